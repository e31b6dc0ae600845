//go:build brokerrestart

// The server-restart test stops the shared NATS server for seconds at a
// time, so it is built only with -tags brokerrestart and run alone, after
// the other tests:
//
//	go test -tags brokerrestart -run TestServerRestart -v ./transport/nats/
package nats

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/internal/ledger"
	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
)

// The local server, as the machine runs it.
const (
	serverBinary = "/usr/sbin/nats-server"
	serverArgs   = "-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
)

// serverControl stops and starts the local test server with
// start-stop-daemon.
type serverControl struct {
	addr string
}

// localServer returns control of the test server, skipping t (failing it
// under CI=true) when the server is not the local one this test can
// restart.
func localServer(t *testing.T, raw string) *serverControl {
	t.Helper()
	s, err := parseServers(strings.SplitN(raw, "?", 2)[0])
	require.NoError(t, err)
	skip := func(msg string) {
		if brokertest.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if s.hosts[0] != "127.0.0.1:4222" {
		skip("the test server " + s.hosts[0] + " is not the local 127.0.0.1:4222 this test restarts")
	}
	for _, bin := range []string{"start-stop-daemon", serverBinary} {
		if _, err := exec.LookPath(bin); err != nil {
			skip(bin + " is not installed; the restart test needs it")
		}
	}
	return &serverControl{addr: s.hosts[0]}
}

func (c *serverControl) run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *serverControl) stop() error {
	return c.run("start-stop-daemon", "--stop", "--oknodo", "--retry", "TERM/30/KILL/5", "--exec", serverBinary)
}

func (c *serverControl) start() error {
	return c.run("start-stop-daemon", append([]string{"--start", "--oknodo", "--background", "--exec", serverBinary, "--"}, strings.Fields(serverArgs)...)...)
}

func (c *serverControl) up() bool {
	conn, err := net.DialTimeout("tcp", c.addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// waitUp waits until the server accepts connections (up) or refuses them.
func (c *serverControl) waitUp(up bool, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c.up() == up {
			return true
		}
	}
	return false
}

// TestServerRestart publishes 20,000 messages from four publishers while
// the server is stopped and started, and counts: confirmed (Publish
// returned nil), failed, received, lost (confirmed and never received;
// must be 0) and duplicate deliveries.
func TestServerRestart(t *testing.T) {
	const total, publishers = 20000, 4
	raw := testURL(t, "request_timeout=2m&ack_wait=5s")
	ctl := localServer(t, raw)
	// Cleanups run last-registered first: the server is back before the
	// brokers close and the namespace is deleted.
	t.Cleanup(func() {
		if !ctl.up() {
			t.Log("restoring the server")
			if err := ctl.start(); err != nil {
				t.Error(err)
			}
			ctl.waitUp(true, time.Minute)
		}
	})
	var logs testlog.Buffer
	logger := logTo(&logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	pub, sub := openTest(t, raw, pubsub.WithLogger(logger)), openTest(t, raw, pubsub.WithLogger(logger))
	ctx := context.Background()

	book := ledger.New()
	_, err := sub.Subscribe(ctx, "restart", "g", func(_ context.Context, m *pubsub.Message) error {
		book.Received(m.ID)
		return nil
	}, pubsub.WithConcurrency(20))
	require.NoError(t, err)

	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for p := range publishers {
		wg.Go(func() {
			size := int64(1)
			if p%2 == 1 {
				size = 10 // batches on odd publishers, single messages on even ones
			}
			for {
				first := next.Add(size) - size
				if first >= total {
					return
				}
				var msgs []*pubsub.Message
				for i := first; i < min(first+size, total); i++ {
					msgs = append(msgs, &pubsub.Message{ID: fmt.Sprintf("m-%05d", i), Payload: []byte("restart")})
				}
				if err := pub.Publish(ctx, "restart", msgs...); err != nil {
					book.Failed(len(msgs), err)
					continue
				}
				for _, m := range msgs {
					book.Confirmed(m.ID)
				}
			}
		})
	}

	// Traffic first, then the restart under it.
	require.Eventually(t, func() bool { return book.NConfirmed() >= 2000 }, time.Minute, 5*time.Millisecond, "traffic before the restart")
	start := time.Now()
	require.NoError(t, ctl.stop())
	require.True(t, ctl.waitUp(false, 30*time.Second), "the server still accepts connections after stop")
	stoppedAt := book.NConfirmed()
	time.Sleep(2 * time.Second)
	require.NoError(t, ctl.start())
	require.True(t, ctl.waitUp(true, time.Minute), "the server did not come back")
	t.Logf("server stopped at %d confirmed, back after %v", stoppedAt, time.Since(start).Round(time.Millisecond))
	wg.Wait()

	// Lost acknowledgements come back after ack_wait; allow a few rounds.
	book.WaitAllReceived(2 * time.Minute)
	time.Sleep(6 * time.Second) // a counting window (ack_wait and a second), for late duplicates
	c := book.Counts()
	t.Logf("published %d: confirmed %d, failed %d (last error: %v); received %d distinct, lost %d, duplicate deliveries %d, delivered though their Publish failed %d",
		total, c.Confirmed, c.Failed, c.LastErr, c.Distinct, len(c.Lost), c.Duplicates, c.Unconfirmed)
	assert.Empty(t, c.Lost, "confirmed but never received")
	assert.Equal(t, total, c.Confirmed+c.Failed)
	assert.Greater(t, c.Confirmed, stoppedAt, "publishers confirmed messages after the restart")
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return pub.Ping(ctx) == nil && sub.Ping(ctx) == nil
	}, 30*time.Second, 100*time.Millisecond, "both brokers are back")
	assert.Contains(t, logs.String(), "nats: connection restored")
}
