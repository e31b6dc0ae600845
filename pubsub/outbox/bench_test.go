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
// p99. BenchmarkOutbox runs 8 writers flat out; BenchmarkOutboxAt5000 8
// writers at 5,000 transactions a second in all (does one relay keep up
// with that rate: msgs/s stays at 5,000 and the latency flat);
// BenchmarkOutboxPaced one writer with a 2ms pause between transactions
// (the latency a quiet service sees); BenchmarkOutboxRelay drains a
// backlog of b.N stored rows with one relay.
//
//	go test -run '^$' -bench Outbox ./pubsub/outbox

// flowParams shape a benchmark's writers.
type flowParams struct {
	writers int           // concurrent writers
	pace    time.Duration // pause of each writer between transactions
	rate    float64       // > 0: messages per second in all, at most
	perTx   int           // messages per transaction (default 1)
}

var flatOut = flowParams{writers: 8}

func BenchmarkOutbox(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchFlow(b, nil, "plain", flatOut) })
	for _, d := range benchDatabases(b) {
		for _, mode := range []string{"dualwrite", "outbox"} {
			b.Run(d.name+"/"+mode, func(b *testing.B) { benchFlow(b, d, mode, flatOut) })
		}
	}
}

// BenchmarkOutboxAt5000 offers 5,000 messages a second from 8 writers, one
// message per transaction, and, in the "10pertx" runs, ten per transaction
// (500 transactions a second), so that the writers' database load does not
// hide what the relay sustains.
func BenchmarkOutboxAt5000(b *testing.B) {
	for _, d := range benchDatabases(b) {
		for _, mode := range []string{"dualwrite", "outbox"} {
			b.Run(d.name+"/"+mode, func(b *testing.B) {
				benchFlow(b, d, mode, flowParams{writers: 8, rate: 5000})
			})
		}
		b.Run(d.name+"/outbox-10pertx", func(b *testing.B) {
			benchFlow(b, d, "outbox", flowParams{writers: 8, rate: 5000, perTx: 10})
		})
	}
}

func BenchmarkOutboxPaced(b *testing.B) {
	for _, d := range benchDatabases(b) {
		for _, mode := range []string{"dualwrite", "outbox"} {
			b.Run(d.name+"/"+mode, func(b *testing.B) {
				benchFlow(b, d, mode, flowParams{writers: 1, pace: 2 * time.Millisecond})
			})
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

// benchFlow runs b.N messages through mode, written as p says.
func benchFlow(b *testing.B, d *database, mode string, p flowParams) {
	ctx := context.Background()
	p.perTx = max(p.perTx, 1)
	var db *sql.DB
	if d != nil {
		db = d.open(b)
		require.NoError(b, outbox.Migrate(ctx, db, outbox.Config{}))
		_, err := db.Exec(`CREATE TABLE IF NOT EXISTS orders (id BIGINT PRIMARY KEY, amount_cents BIGINT NOT NULL)`)
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
	w := benchWriter{db: db, ob: ob, broker: broker, mode: mode, start: start,
		insert: `INSERT INTO orders (id, amount_cents) VALUES (?, ?)`}
	if d != nil && d.name == "postgres" {
		w.insert = `INSERT INTO orders (id, amount_cents) VALUES ($1, $2)`
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, p.writers)
	b.ResetTimer()
	begin := time.Now()
	for range p.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(int64(p.perTx))) - p.perTx
				if i >= b.N {
					return
				}
				if p.rate > 0 {
					time.Sleep(time.Until(begin.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))))
				}
				if err := w.write(ctx, i, min(i+p.perTx, b.N)); err != nil {
					errs <- err
					return
				}
				if p.pace > 0 {
					time.Sleep(p.pace)
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

// benchWriter writes orders and their events.
type benchWriter struct {
	db     *sql.DB
	ob     *outbox.Outbox
	broker pubsub.Publisher
	mode   string
	insert string
	start  []int64
}

var benchPayload = []byte(`{"order":12345,"amount_cents":1999}`)

// write writes order from and the events from..to-1 in one transaction
// (plain: publishes the events), storing the time just before the commit
// (or Publish) of each.
func (w *benchWriter) write(ctx context.Context, from, to int) error {
	msgs := make([]*pubsub.Message, 0, to-from)
	for i := from; i < to; i++ {
		msgs = append(msgs, &pubsub.Message{ID: strconv.Itoa(i), Key: strconv.Itoa(i % 100), Payload: benchPayload})
	}
	stamp := func() {
		now := time.Now().UnixNano()
		for i := from; i < to; i++ {
			atomic.StoreInt64(&w.start[i], now)
		}
	}
	if w.mode == "plain" {
		stamp()
		return w.broker.Publish(ctx, "orders", msgs...)
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, w.insert, from, 1999); err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	if w.mode == "outbox" {
		if err := w.ob.Publish(ctx, tx, "orders", msgs...); err != nil {
			return err
		}
	}
	stamp()
	if err := tx.Commit(); err != nil {
		return err
	}
	if w.mode == "dualwrite" {
		return w.broker.Publish(ctx, "orders", msgs...)
	}
	return nil
}
