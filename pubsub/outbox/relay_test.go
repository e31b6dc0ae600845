package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// flowSize is how many committed messages the flow tests write: 10,000,
// or 2,000 with -short.
func flowSize() int {
	if testing.Short() {
		return 2000
	}
	return 10_000
}

// TestCrashLosesNothing kills relays at random points while messages
// flow: every committed message is published at least once, no rolled-back
// one ever is, and each key's messages first arrive in commit order. A
// relay is stopped by cancelling its context after 2 to 40ms; one in three
// is first killed hard: on PostgreSQL its sessions are terminated
// (pg_terminate_backend), on SQLite its pool is closed, so that it can
// neither mark what it published nor give back its lease.
func TestCrashLosesNothing(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			require.NoError(t, outbox.Migrate(ctx, db, outbox.Config{}))
			b := newBroker(t, memory.Config{})
			topic := topicName(t)
			got := collect(t, b, topic, "g", 8)
			cfg := outbox.Config{
				BatchSize: 50, PollInterval: 50 * time.Millisecond,
				Lease: 300 * time.Millisecond, PublishTimeout: 100 * time.Millisecond,
				Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			}
			writer := newOutbox(t, db, nil, cfg)

			stop := make(chan struct{})
			var (
				wg                 sync.WaitGroup
				incarnations, hard int
				runErrs            []error
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					app := fmt.Sprintf("relay%d", i)
					rdb := d.openNamed(t, app)
					ob := newOutbox(t, rdb, b, cfg)
					rctx, cancel := context.WithCancel(ctx)
					done := make(chan error, 1)
					go func() { done <- ob.Run(rctx) }()
					time.Sleep(time.Duration(2+rand.IntN(38)) * time.Millisecond) // the random kill point
					incarnations++
					if rand.IntN(3) == 0 {
						hard++
						kill(t, d, db, rdb, app)
					}
					cancel()
					if err := <-done; err != nil {
						runErrs = append(runErrs, err)
					}
					_ = rdb.Close()
				}
			}()

			f := write(t, db, writer, topic, flowSize(), 4, 40)
			got.waitUnique(t, len(f.committed), 2*time.Minute)
			close(stop)
			wg.Wait()
			assert.Empty(t, runErrs, "Run returned errors")
			dups := f.check(t, got)
			t.Logf("%s: %d committed, %d rolled back, %d relay incarnations (%d killed hard), %d duplicate deliveries",
				d.name, len(f.committed), len(f.rolledBack), incarnations, hard, dups)
		})
	}
}

// kill kills a relay hard: its PostgreSQL sessions are terminated, or its
// SQLite pool is closed.
func kill(t *testing.T, d *database, admin, rdb *sql.DB, app string) {
	if d.name == "postgres" {
		_, err := admin.ExecContext(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app)
		require.NoError(t, err)
		return
	}
	_ = rdb.Close()
}

// TestConcurrentRelays runs two and four relays, each with a pool of its
// own as separate processes would, on one table while messages flow: every
// message is published, none twice, in commit order per key, and no relay
// logs a failure (a deadlock would be one).
func TestConcurrentRelays(t *testing.T) {
	for _, relays := range []int{2, 4} {
		for _, d := range databases(t) {
			t.Run(fmt.Sprintf("%s/relays=%d", d.name, relays), func(t *testing.T) {
				b := newBroker(t, memory.Config{})
				concurrentRelays(t, d, relays, topicName(t), func(testing.TB) pubsub.Publisher { return b }, b, 8)
			})
		}
	}
}

// concurrentRelays runs relays relays on d, each with a pool of its own and
// the publisher that publisher returns, while 4 writers store flowSize()/2
// messages to topic; sub receives them with the given concurrency.
func concurrentRelays(t *testing.T, d *database, relays int, topic string, publisher func(testing.TB) pubsub.Publisher, sub pubsub.Subscriber, concurrency int) {
	ctx := context.Background()
	db := d.open(t)
	require.NoError(t, outbox.Migrate(ctx, db, outbox.Config{}))
	got := collect(t, sub, topic, "g", concurrency)
	logs := &logRecorder{}
	cfg := outbox.Config{BatchSize: 50, PollInterval: 20 * time.Millisecond, Logger: slog.New(logs)}
	for range relays {
		startRelay(t, newOutbox(t, d.open(t), publisher(t), cfg))
	}
	f := write(t, db, newOutbox(t, db, nil, cfg), topic, flowSize()/2, 4, 40)
	got.waitUnique(t, len(f.committed), 2*time.Minute, func() string {
		var n int
		_ = db.QueryRow(`SELECT count(*) FROM switchyard_outbox WHERE sent_at IS NULL`).Scan(&n)
		return fmt.Sprintf("%d rows pending; relay logs: %q", n, logs.lines())
	})
	time.Sleep(100 * time.Millisecond) // quiet period: nothing more may arrive
	dups := f.check(t, got)
	assert.Zero(t, dups, "duplicate deliveries")
	assert.Empty(t, logs.lines(), "relay failures")
	t.Logf("%s, %d relays: %d committed, %d duplicate deliveries", d.name, relays, len(f.committed), dups)
}
