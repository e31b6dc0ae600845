package rabbitmq

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// strayProxy forwards AMQP connections to the broker and can write a frame
// of its own to the client of the connection that named itself by a given
// connection_name, as a broker that sends a reply nobody asked for would.
type strayProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	clients map[string]net.Conn // connection_name seen → client side
	// writeMu keeps an injected frame apart from the frames forwarded.
	writeMu map[net.Conn]*sync.Mutex
}

func newStrayProxy(t *testing.T, rawURL string) (*strayProxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5672")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &strayProxy{ln: ln, target: target, clients: map[string]net.Conn{}, writeMu: map[net.Conn]*sync.Mutex{}}
	var conns sync.WaitGroup
	var open sync.Map
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			open.Store(c, s)
			wm := &sync.Mutex{}
			p.mu.Lock()
			p.writeMu[c] = wm
			p.mu.Unlock()
			conns.Add(2)
			go func() { // client → broker, watching for the connection's name
				defer conns.Done()
				var seen []byte
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if len(seen) < 4096 {
							seen = append(seen, buf[:n]...)
							for _, name := range []string{"switchyard admin", "switchyard publish", "switchyard consume"} {
								if bytes.Contains(seen, []byte(name)) {
									p.mu.Lock()
									if _, ok := p.clients[name]; !ok {
										p.clients[name] = c
									}
									p.mu.Unlock()
								}
							}
						}
						if _, werr := s.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				_ = s.Close()
				_ = c.Close()
			}()
			go func() { // broker → client
				defer conns.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						wm.Lock()
						_, werr := c.Write(buf[:n])
						wm.Unlock()
						if werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				_ = s.Close()
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		open.Range(func(c, s any) bool {
			_ = c.(net.Conn).Close()
			_ = s.(net.Conn).Close()
			return true
		})
		conns.Wait()
	})
	u.Host = ln.Addr().String()
	return p, u.String()
}

// injectConsumeOk writes a basic.consume-ok for channel to the client of
// the connection named name.
func (p *strayProxy) injectConsumeOk(t *testing.T, name string, channel uint16) {
	t.Helper()
	p.mu.Lock()
	c := p.clients[name]
	wm := p.writeMu[c]
	p.mu.Unlock()
	require.NotNil(t, c, "no connection named %q went through the proxy", name)
	tag := "stray"
	payload := binary.BigEndian.AppendUint16(nil, 60) // class basic
	payload = binary.BigEndian.AppendUint16(payload, 21)
	payload = append(payload, byte(len(tag)))
	payload = append(payload, tag...)
	frame := []byte{1} // method frame
	frame = binary.BigEndian.AppendUint16(frame, channel)
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	frame = append(frame, payload...)
	frame = append(frame, 0xCE)
	wm.Lock()
	defer wm.Unlock()
	_, err := c.Write(frame)
	require.NoError(t, err)
}

// TestAdminConnectionStrayReply: a reply that no call waits for blocks
// amqp091's reader, and with it every call on the connection and Close,
// for ever (seen when a cluster elected a new leader for a group's queue
// during a subscription's probe: the group never consumed again). The
// admin operation's watchdog cuts such a connection after ConfirmTimeout;
// the operation runs again on a new connection and succeeds.
func TestAdminConnectionStrayReply(t *testing.T) {
	p, proxied := newStrayProxy(t, testURL(t, ""))
	_, b := openDriver(t, proxied+"?confirm_timeout=2s")
	topic := uniqueTopic(t, "g")

	// An idle channel on the admin connection, to which the stray reply is
	// addressed, so that no call takes it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := b.adminLink.get(ctx)
	require.NoError(t, err)
	ch, err := conn.Channel()
	require.NoError(t, err)
	id := uint16(reflect.ValueOf(ch).Elem().FieldByName("id").Uint())
	p.injectConsumeOk(t, "switchyard admin", id)

	// The next admin operation opens its channel and waits for an answer
	// that the stuck reader never hands over: without the watchdog, for
	// ever (amqp091's calls take no context). With it, the operation fails
	// once its time is up, the connection is cut, and the next operation
	// runs on a new connection.
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- b.CreateGroup(context.Background(), topic, "g") }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, errTimeout, "the operation had no answer within confirm_timeout")
	case <-time.After(30 * time.Second):
		t.Fatal("CreateGroup did not return within 30s: the admin connection is wedged")
	}
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 2*time.Second, "the operation waited for confirm_timeout (2s)")
	require.Eventually(t, conn.IsClosed, 10*time.Second, 10*time.Millisecond, "the wedged connection was cut")
	require.NoError(t, b.CreateGroup(context.Background(), topic, "g"), "the next operation runs on a new connection")
	next, err := b.adminLink.get(ctx)
	require.NoError(t, err)
	assert.NotSame(t, conn, next, "admin operations use a new connection")
	t.Logf("the wedged operation returned after %v", took.Round(time.Millisecond))
}
