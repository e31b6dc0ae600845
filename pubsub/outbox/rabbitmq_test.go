// The RabbitMQ variants of the outbox tests. They need transport/rabbitmq
// on Core v2 (rabbitmq.New(ctx, rabbitmq.Config{URL: ...}, opts...)) and a
// RabbitMQ at SWITCHYARD_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/):
//
//	go test -tags rabbitmq ./pubsub/outbox
package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/internal/faultproxy"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/rabbitmq"
)

// openRabbit opens a client on rawURL, closed when t ends.
func openRabbit(t testing.TB, rawURL string) *pubsub.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A prefetch of 256: the default (twice the concurrency) holds a
	// quorum queue consumer to a few hundred messages a second.
	c, err := rabbitmq.New(ctx, rabbitmq.Config{URL: rawURL, Prefetch: 256}, pubsub.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rabbitTopic returns a topic of the test's own (unique per run, as the
// broker outlives the test) and deletes it and its groups when t ends.
// Call it after opening c and before subscribing, so that the
// subscriptions close first.
func rabbitTopic(t testing.TB, c *pubsub.Client, rawURL string, groups ...string) string {
	topic := topicName(t) + "-" + pubsub.NewID()[:8]
	for _, g := range groups {
		require.NoError(t, c.CreateGroup(context.Background(), topic, g))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, g := range groups {
			_ = c.DeleteGroup(ctx, topic, g)
		}
		conn, err := amqp.Dial(rawURL)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(topic, false, false)
		}
	})
	return topic
}

// TestRabbitMQCrash is TestCrashLosesNothing with relays in processes of
// their own that are killed (SIGKILL) 0 to 300ms after their relay started,
// while 10,000 messages flow: no relay marks what it published last, and
// on SQLite none gives its lease back. The consumer handles one message at
// a time, so that RabbitMQ's queue order shows the relays' order.
func TestRabbitMQCrash(t *testing.T) {
	amqpURL := brokertest.AMQPURL(t)
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			require.NoError(t, outbox.Migrate(ctx, db, outbox.Config{}))
			b := openRabbit(t, amqpURL)
			topic := rabbitTopic(t, b, amqpURL, "g")
			got := collect(t, b, topic, "g", 1)

			stop := make(chan struct{})
			var (
				wg     sync.WaitGroup
				kills  int
				errs   []error
				output []byte
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					cmd := exec.Command(os.Args[0], "-test.run=^TestRelayProcess$", "-test.count=1")
					cmd.Env = append(os.Environ(), "OUTBOX_RELAY_PROCESS="+d.name, "OUTBOX_RELAY_DB="+d.url, "SWITCHYARD_AMQP_URL="+amqpURL)
					out := &lockedBuffer{ready: make(chan struct{})}
					cmd.Stdout, cmd.Stderr = out, out
					if err := cmd.Start(); err != nil {
						errs = append(errs, err)
						return
					}
					select {
					case <-out.ready:
						time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond) // the random kill point
					case <-time.After(30 * time.Second):
						errs = append(errs, fmt.Errorf("relay process did not start: %s", out.bytes()))
					}
					_ = cmd.Process.Kill()
					if err := cmd.Wait(); err != nil && cmd.ProcessState.ExitCode() != -1 {
						errs = append(errs, fmt.Errorf("relay process: %v", err))
						output = out.bytes()
					}
					kills++
				}
			}()
			f := write(t, db, newOutbox(t, db, nil, outbox.Config{}), topic, flowSize(), 4, 40)
			got.waitUnique(t, len(f.committed), 3*time.Minute)
			close(stop)
			wg.Wait()
			require.Empty(t, errs, "relay processes failed: %s", output)
			dups := f.check(t, got)
			t.Logf("%s on RabbitMQ: %d committed, %d rolled back, %d relay processes killed, %d duplicate deliveries",
				d.name, len(f.committed), len(f.rolledBack), kills, dups)
		})
	}
}

// TestRelayProcess is the relay process of TestRabbitMQCrash; it runs only
// there.
func TestRelayProcess(t *testing.T) {
	kind := os.Getenv("OUTBOX_RELAY_PROCESS")
	if kind == "" {
		t.Skip("the relay process of TestRabbitMQCrash")
	}
	var db *sql.DB
	if kind == "postgres" {
		db = openPostgres(t, os.Getenv("OUTBOX_RELAY_DB"))
	} else {
		db = openSQLite(t, os.Getenv("OUTBOX_RELAY_DB"))
	}
	b := openRabbit(t, os.Getenv("SWITCHYARD_AMQP_URL"))
	ob := newOutbox(t, db, b, outbox.Config{BatchSize: 50, Lease: time.Second, PublishTimeout: 500 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	fmt.Println(relayReady)
	_ = ob.Run(context.Background()) // until killed
}

// relayReady is what a relay process prints when its relay starts.
const relayReady = "outbox relay running"

// lockedBuffer collects a process's output, and closes ready when the
// output has relayReady.
type lockedBuffer struct {
	mu    sync.Mutex
	buf   []byte
	ready chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := bytes.Contains(b.buf, []byte(relayReady))
	b.buf = append(b.buf, p...)
	if !seen && bytes.Contains(b.buf, []byte(relayReady)) {
		close(b.ready)
	}
	return len(p), nil
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

// TestRabbitMQConcurrentRelays is TestConcurrentRelays on RabbitMQ, each
// relay with a connection of its own.
func TestRabbitMQConcurrentRelays(t *testing.T) {
	amqpURL := brokertest.AMQPURL(t)
	for _, relays := range []int{2, 4} {
		for _, d := range databases(t) {
			t.Run(fmt.Sprintf("%s/relays=%d", d.name, relays), func(t *testing.T) {
				b := openRabbit(t, amqpURL)
				topic := rabbitTopic(t, b, amqpURL, "g")
				concurrentRelays(t, d, relays, topic, func(tb testing.TB) pubsub.Publisher { return openRabbit(tb, amqpURL) }, b, 1)
			})
		}
	}
}

// TestRabbitMQInboxRedelivery is TestInboxRedelivery on RabbitMQ, which
// does not keep a key's order through retries.
func TestRabbitMQInboxRedelivery(t *testing.T) {
	amqpURL := brokertest.AMQPURL(t)
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		b := openRabbit(t, amqpURL)
		topic := rabbitTopic(t, b, amqpURL, "g")
		inboxRedelivery(t, d, db, b, topic, false)
	})
}

// TestRabbitMQBrokerDown cuts the relay's connection to RabbitMQ, through a
// TCP proxy that then refuses connections for 10s (2s with -short), while
// transactions keep committing; the backlog drains when it is back. The
// consumer has a connection of its own, which stays up.
func TestRabbitMQBrokerDown(t *testing.T) {
	amqpURL := brokertest.AMQPURL(t)
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			require.NoError(t, outbox.Migrate(ctx, db, outbox.Config{}))
			consumer := openRabbit(t, amqpURL)
			topic := rabbitTopic(t, consumer, amqpURL, "g")
			got := collect(t, consumer, topic, "g", 1)
			p, proxied, err := faultproxy.ForURL(amqpURL, "5672")
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
			relayBroker := openRabbit(t, proxied)
			ob := newOutbox(t, db, relayBroker, outbox.Config{})
			startRelay(t, ob)
			o := brokerOutage(t, db, ob, topic, got, func(down bool) {
				p.SetDown(down)
				if down {
					p.Cut()
				}
			})
			t.Logf("%s on RabbitMQ: %s", d.name, o)
		})
	}
}
