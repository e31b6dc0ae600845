//go:build brokerrestart

// The broker-restart test stops the shared RabbitMQ for seconds at a time, so
// it is built only with -tags brokerrestart and run alone: .ci/run runs it
// after the other tests, so that no other package's test meets the outage.
package rabbitmq

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
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

// brokerControl restarts the local test broker with rabbitmqctl.
type brokerControl struct {
	addr string // host:port of the AMQP listener
}

// localBroker returns control of the test broker, skipping t when the broker
// is not a local one that rabbitmqctl can drive.
func localBroker(t *testing.T, rawURL string) *brokerControl {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		t.Skipf("the test broker %s is not local; restart tests need rabbitmqctl on its host", u.Host)
	}
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		msg := "rabbitmqctl is not installed; restart tests need it"
		if brokertest.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	port := u.Port()
	if port == "" {
		port = "5672"
	}
	return &brokerControl{addr: net.JoinHostPort(u.Hostname(), port)}
}

func (c *brokerControl) run(t *testing.T, timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *brokerControl) portOpen() bool {
	conn, err := net.DialTimeout("tcp", c.addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// waitPort waits until the AMQP port accepts connections (up) or refuses
// them (!up).
func (c *brokerControl) waitPort(up bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c.portOpen() == up {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// ensureUp brings the broker back if it is down: start_app when the node
// runs with its application stopped, else a full server start; then it
// waits for the port and for the broker to finish booting.
func (c *brokerControl) ensureUp(t *testing.T) {
	if c.portOpen() {
		return
	}
	t.Log("restoring the broker")
	if err := c.run(t, time.Minute, "rabbitmqctl", "start_app"); err != nil {
		t.Logf("start_app failed (%v); starting the server", err)
		if err := c.run(t, time.Minute, "rabbitmq-server", "-detached"); err != nil {
			t.Logf("rabbitmq-server -detached: %v", err)
		}
	}
	if !c.waitPort(true, 2*time.Minute) {
		t.Errorf("the broker did not come back on %s", c.addr)
		return
	}
	if err := c.run(t, time.Minute, "rabbitmqctl", "await_startup"); err != nil {
		t.Logf("await_startup: %v", err)
	}
}

// TestBrokerRestart restarts RabbitMQ under running publishers and
// subscribers and checks that both recover on their own and that every
// message whose Publish returned nil is delivered (at least once).
func TestBrokerRestart(t *testing.T) {
	rawURL := testURL(t, "confirm_timeout=2m")
	ctl := localBroker(t, rawURL)
	t.Run("stop_app", func(t *testing.T) {
		restartUnderLoad(t, rawURL, ctl, func(t *testing.T) {
			require.NoError(t, ctl.run(t, time.Minute, "rabbitmqctl", "stop_app"))
			require.True(t, ctl.waitPort(false, 30*time.Second), "port still open after stop_app")
			time.Sleep(time.Second)
			require.NoError(t, ctl.run(t, time.Minute, "rabbitmqctl", "start_app"))
		})
	})
	t.Run("server", func(t *testing.T) {
		if testing.Short() {
			t.Skip("full server restart: the long variant")
		}
		restartUnderLoad(t, rawURL, ctl, func(t *testing.T) {
			require.NoError(t, ctl.run(t, time.Minute, "rabbitmqctl", "stop"))
			require.True(t, ctl.waitPort(false, 30*time.Second), "port still open after stop")
			require.NoError(t, ctl.run(t, time.Minute, "rabbitmq-server", "-detached"))
			require.True(t, ctl.waitPort(true, 2*time.Minute), "server did not come back")
			require.NoError(t, ctl.run(t, time.Minute, "rabbitmqctl", "await_startup"))
		})
	})
}

func restartUnderLoad(t *testing.T, rawURL string, ctl *brokerControl, restart func(*testing.T)) {
	topic := uniqueTopic(t, "g")
	var logs testlog.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	open := func() *pubsub.Client { return openTest(t, rawURL, pubsub.WithLogger(logger)) }
	pubBroker, subBroker := open(), open()
	ctx := testCtx(t)

	book := ledger.New()
	_, err := subBroker.Subscribe(ctx, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		book.Received(m.ID)
		return nil
	}, pubsub.WithConcurrency(20), pubsub.WithLogger(logger))
	require.NoError(t, err)

	// Publishers: single messages and batches of 10, as fast as they go.
	const publishers = 4
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for p := range publishers {
		wg.Go(func() {
			for n := 0; !stop.Load(); {
				size := 1
				if p%2 == 1 {
					size = 10
				}
				msgs := make([]*pubsub.Message, size)
				for i := range msgs {
					msgs[i] = &pubsub.Message{ID: fmt.Sprintf("p%d-%d", p, n), Payload: []byte("restart")}
					n++
				}
				if err := pubBroker.Publish(ctx, topic, msgs...); err != nil {
					book.Failed(size, err)
					continue
				}
				for _, m := range msgs {
					book.Confirmed(m.ID)
				}
			}
		})
	}

	// Let traffic flow, restart the broker under it, let it flow again.
	require.Eventually(t, func() bool { return book.NConfirmed() >= 2000 }, time.Minute, 10*time.Millisecond, "traffic before the restart")
	// Cleanups run last-registered first: the broker is restored before
	// the brokers close and the topology is deleted.
	t.Cleanup(func() { ctl.ensureUp(t) })
	start := time.Now()
	restart(t)
	t.Logf("broker restarted in %v; %d messages confirmed so far", time.Since(start).Round(time.Millisecond), book.NConfirmed())
	before := book.NConfirmed()
	require.Eventually(t, func() bool { return book.NConfirmed() >= before+2000 }, 2*time.Minute, 10*time.Millisecond, "publishers recover")
	stop.Store(true)
	wg.Wait()

	// Every confirmed message arrives.
	book.WaitAllReceived(2 * time.Minute)
	time.Sleep(500 * time.Millisecond) // a counting window, for late duplicates
	c := book.Counts()
	t.Logf("confirmed %d, failed %d (last error: %v), received %d distinct, %d duplicate deliveries, %d delivered though their Publish failed",
		c.Confirmed, c.Failed, c.LastErr, c.Distinct, c.Duplicates, c.Unconfirmed)
	assert.Empty(t, c.Lost, "lost: confirmed but never delivered")
	assert.GreaterOrEqual(t, c.Confirmed, 4000)
	// Idle connections (the publisher's consume connection, the
	// subscriber's publish connection) come back at their next attempt,
	// within the 5s backoff cap.
	for _, b := range []*pubsub.Client{pubBroker, subBroker} {
		require.Eventually(t, func() bool { return b.Ping(ctx) == nil }, 20*time.Second, 50*time.Millisecond, "both connections of both brokers are back")
	}
}
