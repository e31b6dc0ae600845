package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// The benchmarks compare, in one process, the ways a service can publish
// an event about a database write, each measured end to end (from the
// first write to the last delivery to a subscriber of an in-process
// broker):
//
//	plain      Publish alone, no database: the broker's own cost
//	dualwrite  a transaction inserting an order row, then Publish after
//	           commit (the dual write the outbox replaces: not safe)
//	outbox     a transaction inserting the order row and storing the event
//	           with Outbox.Publish; a relay publishes it
//
// Each reports msgs/s and the latency of each message from just before its
// transaction's commit (plain: before Publish) to its delivery, p50 and
// p99. BenchmarkOutbox runs 8 writers flat out; BenchmarkOutboxPaced one
// writer at about 500 transactions a second (the latency an idle service
// sees); BenchmarkOutboxRelay drains a backlog of b.N stored rows with one
// relay, which is what the relay keeps up with.
//
//	go test -run '^$' -bench Outbox ./pubsub/outbox

const benchWriters = 8

func BenchmarkOutbox(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchFlow(b, nil, "plain", benchWriters, 0) })
	for _, d := range benchDatabases(b) {
		for _, mode := range []string{"dualwrite", "outbox"} {
			b.Run(d.name+"/"+mode, func(b *testing.B) { benchFlow(b, d, mode, benchWriters, 0) })
		}
	}
}

func BenchmarkOutboxPaced(b *testing.B) {
	for _, d := range benchDatabases(b) {
		for _, mode := range []string{"dualwrite", "outbox"} {
			b.Run(d.name+"/"+mode, func(b *testing.B) { benchFlow(b, d, mode, 1, 2*time.Millisecond) })
		}
	}
}

func BenchmarkOutboxRelay(b *testing.B) {
	for _, d := range benchDatabases(b) {
		b.Run(d.name, func(b *testing.B) {
			ctx := context.Background()
			db := d.open(b)
			require.NoError(b, outbox.Migrate(ctx, db, outbox.Config{}))
			broker := newBroker(b, memory.Config{GroupCapacity: max(b.N, 1000)})
			var received atomic.Int64
			all := make(chan struct{})
			sub, err := broker.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error {
				if received.Add(1) == int64(b.N) {
					close(all)
				}
				return nil
			}, pubsub.WithConcurrency(4))
			require.NoError(b, err)
			defer sub.Close()
			ob := newOutbox(b, db, broker, outbox.Config{})
			// The backlog: b.N rows on 100 keys, in transactions of 100.
			for i := 0; i < b.N; i += 100 {
				tx, err := db.BeginTx(ctx, nil)
				require.NoError(b, err)
				msgs := make([]*pubsub.Message, min(100, b.N-i))
				for j := range msgs {
					msgs[j] = &pubsub.Message{Key: strconv.Itoa(j), Payload: []byte(`{"order":12345,"amount_cents":1999}`)}
				}
				require.NoError(b, ob.Publish(ctx, tx, "orders", msgs...))
				require.NoError(b, tx.Commit())
			}
			b.ResetTimer()
			stop := startRelay(b, ob)
			<-all
			b.StopTimer()
			require.NoError(b, stop())
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func benchDatabases(b *testing.B) []*database {
	pg := &database{name: "postgres"}
	pg.open = func(tb testing.TB) *sql.DB { return openPostgres(tb, postgresURL(tb)) }
	lite := &database{name: "sqlite"}
	lite.open = func(tb testing.TB) *sql.DB { return openSQLite(tb, sqliteURL(tb)) }
	return []*database{pg, lite}
}

// benchFlow runs b.N messages through mode with writers writers, each
// waiting pace between transactions.
func benchFlow(b *testing.B, d *database, mode string, writers int, pace time.Duration) {
	ctx := context.Background()
	var db *sql.DB
	if d != nil {
		db = d.open(b)
		require.NoError(b, outbox.Migrate(ctx, db, outbox.Config{}))
		_, err := db.Exec(`CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, amount_cents BIGINT NOT NULL)`)
		require.NoError(b, err)
		_, err = db.Exec(`DELETE FROM orders`)
		require.NoError(b, err)
	}
	broker := newBroker(b, memory.Config{GroupCapacity: max(b.N, 1000)})

	start := make([]int64, b.N) // UnixNano before commit, per message
	lat := make([]time.Duration, 0, b.N)
	var mu sync.Mutex
	all := make(chan struct{})
	sub, err := broker.Subscribe(ctx, "orders", "g", func(_ context.Context, m *pubsub.Message) error {
		now := time.Now().UnixNano()
		i, _ := strconv.Atoi(m.ID)
		mu.Lock()
		lat = append(lat, time.Duration(now-atomic.LoadInt64(&start[i])))
		n := len(lat)
		mu.Unlock()
		if n == b.N {
			close(all)
		}
		return nil
	}, pubsub.WithConcurrency(4))
	require.NoError(b, err)
	defer sub.Close()

	var ob *outbox.Outbox
	if mode == "outbox" {
		ob = newOutbox(b, db, broker, outbox.Config{})
		startRelay(b, ob)
	}
	insert := `INSERT INTO orders (id, amount_cents) VALUES (?, ?)`
	if d != nil && d.name == "postgres" {
		insert = `INSERT INTO orders (id, amount_cents) VALUES ($1, $2)`
	}
	payload := []byte(`{"order":12345,"amount_cents":1999}`)

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				m := &pubsub.Message{ID: strconv.Itoa(i), Key: strconv.Itoa(i % 100), Payload: payload}
				if err := benchOne(ctx, db, ob, broker, mode, insert, i, m, &start[i]); err != nil {
					errs <- err
					return
				}
				if pace > 0 {
					time.Sleep(pace)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d messages delivered", len(lat), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// benchOne writes one order and its event in mode, storing the time just
// before the commit (or Publish) in t0.
func benchOne(ctx context.Context, db *sql.DB, ob *outbox.Outbox, broker pubsub.Publisher, mode, insert string, i int, m *pubsub.Message, t0 *int64) error {
	if mode == "plain" {
		atomic.StoreInt64(t0, time.Now().UnixNano())
		return broker.Publish(ctx, "orders", m)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, insert, i, 1999); err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	if mode == "outbox" {
		if err := ob.Publish(ctx, tx, "orders", m); err != nil {
			return err
		}
	}
	atomic.StoreInt64(t0, time.Now().UnixNano())
	if err := tx.Commit(); err != nil {
		return err
	}
	if mode == "dualwrite" {
		return broker.Publish(ctx, "orders", m)
	}
	return nil
}
