package faultproxy_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/faultproxy"
)

// echoServer starts a TCP server that writes back what it reads, and
// returns its address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// start starts a proxy to target, closed with t.
func start(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func dial(t *testing.T, p *faultproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	return c
}

// roundTrip writes b to c, reads as many bytes back and returns them.
func roundTrip(t *testing.T, c net.Conn, b []byte) []byte {
	t.Helper()
	werr := make(chan error, 1)
	go func() { _, err := c.Write(b); werr <- err }()
	got := make([]byte, len(b))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.NoError(t, <-werr)
	return got
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond, msg)
}

func TestBytesThrough(t *testing.T) {
	p := start(t, echoServer(t))
	c := dial(t, p)
	payload := make([]byte, 1<<20+17)
	_, _ = rand.Read(payload)
	got := roundTrip(t, c, payload)
	assert.True(t, bytes.Equal(payload, got), "the echo is byte for byte what was sent")
	waitFor(t, func() bool { return p.Stats().ToClient == int64(len(payload)) }, "counted")
	st := p.Stats()
	assert.Equal(t, int64(len(payload)), st.ToTarget)
	assert.Equal(t, int64(len(payload)), st.ToClient)
	assert.Equal(t, int64(1), st.Accepted)
	assert.Equal(t, 1, st.Open)
}

func TestForURL(t *testing.T) {
	p, u, err := faultproxy.ForURL("amqp://guest:pw@127.0.0.1/vh?heartbeat=1", "5672")
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	assert.Equal(t, "amqp://guest:pw@"+p.Addr()+"/vh?heartbeat=1", u)
}

// TestLatency: a round trip through the proxy takes at least twice the
// latency (once each way), and not much more on an echo server.
func TestLatency(t *testing.T) {
	const latency = 200 * time.Millisecond
	p := start(t, echoServer(t))
	c := dial(t, p)
	roundTrip(t, c, []byte("warm"))
	p.SetLatency(latency)
	for i := range 3 {
		start := time.Now()
		got := roundTrip(t, c, []byte{byte(i)})
		rtt := time.Since(start)
		assert.Equal(t, []byte{byte(i)}, got)
		assert.GreaterOrEqual(t, rtt, 2*latency, "round trip %d", i)
		assert.Less(t, rtt, 2*latency+2*time.Second, "round trip %d", i)
		t.Logf("round trip %d with %v each way: %v", i, latency, rtt)
	}
	p.SetLatency(0)
	start := time.Now()
	roundTrip(t, c, []byte("fast"))
	assert.Less(t, time.Since(start), 2*latency, "latency removed: a round trip takes less than one with latency")
}

// TestLatencyKeepsOrder: many small writes under latency arrive in order.
func TestLatencyKeepsOrder(t *testing.T) {
	p := start(t, echoServer(t))
	p.SetLatency(20 * time.Millisecond)
	c := dial(t, p)
	var want bytes.Buffer
	go func() {
		for i := range 200 {
			_, _ = c.Write([]byte{byte(i)})
		}
	}()
	for i := range 200 {
		want.WriteByte(byte(i))
	}
	got := make([]byte, 200)
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, want.Bytes(), got)
}

// TestBandwidth: N bytes each way at B bytes/s take at least N/B.
func TestBandwidth(t *testing.T) {
	const rate = 256 << 10 // bytes/s per direction
	const n = 128 << 10
	p := start(t, echoServer(t))
	c := dial(t, p)
	roundTrip(t, c, []byte("warm"))
	p.SetBandwidth(rate)
	payload := make([]byte, n)
	_, _ = rand.Read(payload)
	start := time.Now()
	got := roundTrip(t, c, payload)
	took := time.Since(start)
	assert.Equal(t, payload, got)
	min := time.Duration(n) * time.Second / rate
	assert.GreaterOrEqual(t, took, min)
	assert.Less(t, took, 2*min+2*time.Second)
	t.Logf("%d bytes echoed at %d B/s each way: %v (at least %v)", n, rate, took, min)
}

// TestCut: Cut closes open connections on both sides; new ones work.
func TestCut(t *testing.T) {
	p := start(t, echoServer(t))
	c1, c2 := dial(t, p), dial(t, p)
	roundTrip(t, c1, []byte("a"))
	roundTrip(t, c2, []byte("b"))
	require.Equal(t, 2, p.Stats().Open)
	p.Cut()
	for _, c := range []net.Conn{c1, c2} {
		_, err := c.Read(make([]byte, 1))
		assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err), "read after Cut: %v", err)
	}
	waitFor(t, func() bool { return p.Stats().Open == 0 }, "no connection open after Cut")
	c3 := dial(t, p)
	assert.Equal(t, []byte("c"), roundTrip(t, c3, []byte("c")))
	assert.Equal(t, int64(3), p.Stats().Accepted)
}

// TestCutUnderLatency: Cut does not wait for delayed chunks.
func TestCutUnderLatency(t *testing.T) {
	p := start(t, echoServer(t))
	p.SetLatency(time.Hour)
	c := dial(t, p)
	_, err := c.Write([]byte("held"))
	require.NoError(t, err)
	waitFor(t, func() bool { return p.Stats().Open == 1 }, "proxied")
	p.Cut()
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err)
	waitFor(t, func() bool { return p.Stats().Open == 0 }, "closed at once")
	assert.Zero(t, p.Stats().ToTarget, "the delayed chunk never left")
}

// TestDown: while down the proxy accepts and closes at once; Up again
// proxies.
func TestDown(t *testing.T) {
	p := start(t, echoServer(t))
	p.SetDown(true)
	c := dial(t, p)
	_, err := c.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, io.EOF) || isReset(err), "refused: %v", err)
	st := p.Stats()
	assert.Equal(t, int64(1), st.Refused)
	assert.Zero(t, st.Accepted)
	p.SetDown(false)
	c = dial(t, p)
	assert.Equal(t, []byte("up"), roundTrip(t, c, []byte("up")))
	assert.Equal(t, int64(1), p.Stats().Accepted)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
