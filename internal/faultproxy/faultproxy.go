// Package faultproxy is a TCP proxy that injects network faults between a
// client and a broker, for tests: it cuts every connection (Cut), refuses
// new ones (SetDown), delays each direction (SetLatency) and limits each
// direction's throughput (SetBandwidth). Faults apply to connections already
// open as well as to new ones, from the next chunk of bytes on.
//
// Each direction of a proxied connection has a reader that reads chunks of
// at most ChunkSize bytes and stamps each with the time it may leave
// (arrival plus the latency then set), and a writer that writes them in
// order, each no earlier than its stamp and no faster than the bandwidth
// then set. So latency delays every chunk by at least the latency without
// reordering anything, and a bandwidth of B bytes/s makes N bytes take at
// least N/B seconds. At most queueChunks chunks wait per direction; then
// the reader stops reading, so TCP flow control pushes back on the sender
// as a slow link would.
package faultproxy

import (
	"errors"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// ChunkSize is the largest chunk a direction reads, delays and writes at
// once.
const ChunkSize = 16 << 10

// queueChunks is how many chunks may wait per direction.
const queueChunks = 64

// Proxy forwards TCP connections from Addr to its target. Its methods are
// safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	latency   atomic.Int64 // time.Duration, per direction
	bandwidth atomic.Int64 // bytes per second per direction; 0: unlimited
	down      atomic.Bool
	toTarget  atomic.Int64 // bytes written to the target
	toClient  atomic.Int64 // bytes written to clients
	accepted  atomic.Int64 // connections proxied
	refused   atomic.Int64 // connections refused while down

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	cut    chan struct{} // closed by the next Cut, then replaced
	closed bool
	wg     sync.WaitGroup
}

// New starts a proxy to target (host:port) listening on a free port of
// 127.0.0.1. Close stops it.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, cut: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// ForURL starts a proxy to the host of rawURL (defaultPort when the URL
// has none) and returns it with rawURL pointed at the proxy (user, path
// and query kept).
func ForURL(rawURL, defaultPort string) (*Proxy, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", errors.New("faultproxy: URL does not parse")
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	p, err := New(target)
	if err != nil {
		return nil, "", err
	}
	u.Host = p.Addr()
	return p, u.String(), nil
}

// Addr returns the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every proxied connection, on both sides, at once. New
// connections are still accepted unless the proxy is down.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	close(p.cut)
	p.cut = make(chan struct{})
}

// SetDown makes the proxy refuse new connections (accept and close them at
// once, as a broker that is gone would) while down is true. Connections
// already open stay open: call Cut as well for a full outage.
func (p *Proxy) SetDown(down bool) { p.down.Store(down) }

// SetLatency delays each chunk of each direction by d (0: none).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetBandwidth limits each direction of each connection to bytesPerSecond
// (0: unlimited).
func (p *Proxy) SetBandwidth(bytesPerSecond int) { p.bandwidth.Store(int64(bytesPerSecond)) }

// Reset removes latency and bandwidth limits and accepts connections again.
func (p *Proxy) Reset() {
	p.SetDown(false)
	p.SetLatency(0)
	p.SetBandwidth(0)
}

// Stats counts what went through the proxy.
type Stats struct {
	ToTarget int64 // bytes written to the target
	ToClient int64 // bytes written to clients
	Accepted int64 // connections proxied
	Refused  int64 // connections refused while down
	Open     int   // proxied connections open now
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := len(p.conns) / 2
	p.mu.Unlock()
	return Stats{
		ToTarget: p.toTarget.Load(),
		ToClient: p.toClient.Load(),
		Accepted: p.accepted.Load(),
		Refused:  p.refused.Load(),
		Open:     open,
	}
}

// Close stops accepting, closes every connection and waits for the proxy's
// goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			p.refused.Add(1)
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward connects c to the target and runs both directions until either
// side closes or Cut.
func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	s, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	cut := p.cut
	p.mu.Unlock()
	p.accepted.Add(1)
	done := make(chan struct{}, 2)
	go p.direction(s, c, &p.toTarget, cut, done)
	go p.direction(c, s, &p.toClient, cut, done)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// chunk is bytes read from one side and the time they may leave.
type chunk struct {
	b   []byte
	due time.Time
}

// direction copies src to dst chunk by chunk, with the latency and
// bandwidth set; when either side fails, or on Cut, it closes both.
func (p *Proxy) direction(dst, src net.Conn, written *atomic.Int64, cut <-chan struct{}, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	q := make(chan chunk, queueChunks)
	go func() {
		defer close(q)
		for {
			b := make([]byte, ChunkSize)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b: b[:n], due: time.Now().Add(time.Duration(p.latency.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	var next time.Time // when the link is free again, under a bandwidth limit
	failed := false
	for ch := range q {
		if failed {
			continue // drain so that the reader is never stuck
		}
		if !wait(ch.due, cut) {
			failed = true
			continue
		}
		if bw := p.bandwidth.Load(); bw > 0 {
			now := time.Now()
			if next.Before(now) {
				next = now
			}
			next = next.Add(time.Duration(int64(len(ch.b)) * int64(time.Second) / bw))
			if !wait(next, cut) {
				failed = true
				continue
			}
		} else {
			next = time.Time{}
		}
		n, err := dst.Write(ch.b)
		written.Add(int64(n))
		if err != nil {
			failed = true
			_ = dst.Close()
			_ = src.Close()
		}
	}
	_ = dst.Close()
	_ = src.Close()
}

// wait waits until t (the delay is the fault being injected) and reports
// true, or false as soon as cut is closed.
func wait(t time.Time, cut <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-cut:
		return false
	}
}
