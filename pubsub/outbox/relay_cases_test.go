package outbox_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// outcomes records what relays report.
type outcomes struct {
	mu   sync.Mutex
	byID map[string][]outbox.Outcome
	lags []time.Duration
	errs []error
}

func (o *outcomes) observer() outbox.Observer {
	o.byID = map[string][]outbox.Outcome{}
	return outbox.Observer{OnRelayed: func(_ context.Context, r outbox.Relayed) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.byID[r.Message.ID] = append(o.byID[r.Message.ID], r.Outcome)
		o.lags = append(o.lags, r.Lag)
		if r.Err != nil {
			o.errs = append(o.errs, r.Err)
		}
	}}
}

func (o *outcomes) of(id string) []outbox.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]outbox.Outcome(nil), o.byID[id]...)
}

func countRows(t *testing.T, db *sql.DB, where string) (n int) {
	t.Helper()
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM switchyard_outbox WHERE `+where).Scan(&n))
	return n
}

// TestRejectedMessage: a message the broker refuses as too large is
// marked failed with the reason and never published; the messages around
// it, of the same key, are.
func TestRejectedMessage(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		b := newBroker(t, memory.Config{MaxMessageBytes: 100})
		topic := topicName(t)
		got := collect(t, b, topic, "g", 1)
		var seen outcomes
		ob := newOutbox(t, db, b, outbox.Config{Observer: seen.observer()})
		ok1 := &pubsub.Message{ID: "ok1", Key: "k", Payload: []byte("a")}
		big := &pubsub.Message{ID: "big", Key: "k", Payload: make([]byte, 200)}
		ok2 := &pubsub.Message{ID: "ok2", Key: "k", Payload: []byte("b")}
		store(t, db, ob, topic, ok1, big, ok2)
		stop := startRelay(t, ob)
		got.waitUnique(t, 2, 10*time.Second)
		require.NoError(t, stop())
		var ids []string
		for _, m := range got.snapshot() {
			ids = append(ids, m.ID)
		}
		assert.Equal(t, []string{"ok1", "ok2"}, ids)
		assert.Equal(t, []outbox.Outcome{outbox.Rejected}, seen.of("big"))
		assert.Equal(t, []outbox.Outcome{outbox.Published}, seen.of("ok1"))
		var reason string
		require.NoError(t, db.QueryRow(q(d, `SELECT error FROM switchyard_outbox WHERE msg_id = ? AND failed_at IS NOT NULL`), "big").Scan(&reason))
		assert.Contains(t, reason, "over the limit")
		p, err := ob.Pending(context.Background())
		require.NoError(t, err)
		assert.Zero(t, p.Rows)
	})
}

// TestPartialPublishError: when Publish names the messages of a batch it
// did not accept, the others are marked published and only those are
// published again.
func TestPartialPublishError(t *testing.T) {
	forEachDB(t, func(t *testing.T, _ *database, db *sql.DB) {
		b := newBroker(t, memory.Config{})
		topic := topicName(t)
		got := collect(t, b, topic, "g", 1)
		var seen outcomes
		ob := newOutbox(t, db, &partial{Publisher: b}, outbox.Config{Observer: seen.observer(), Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
		store(t, db, ob, topic, &pubsub.Message{ID: "m0"}, &pubsub.Message{ID: "m1"}, &pubsub.Message{ID: "m2"})
		stop := startRelay(t, ob)
		got.waitUnique(t, 3, 10*time.Second)
		require.NoError(t, stop())
		assert.Zero(t, got.duplicates())
		assert.Equal(t, []outbox.Outcome{outbox.Failed, outbox.Published}, seen.of("m1"))
		assert.Equal(t, []outbox.Outcome{outbox.Published}, seen.of("m0"))
		assert.Equal(t, []outbox.Outcome{outbox.Published}, seen.of("m2"))
		assert.Equal(t, 3, countRows(t, db, "sent_at IS NOT NULL"))
	})
}

// TestLeaseTakeover: the rows of a relay that hangs while publishing go to
// another relay once its lease expires, and not before.
func TestLeaseTakeover(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		b := newBroker(t, memory.Config{})
		topic := topicName(t)
		got := collect(t, b, topic, "g", 1)
		const lease = 600 * time.Millisecond
		cfg := outbox.Config{Lease: lease, PublishTimeout: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond}
		hung := newHanging(b)
		a := newOutbox(t, d.open(t), hung, cfg)
		store(t, db, a, topic, &pubsub.Message{ID: "m", Key: "k"})
		startRelay(t, a)
		<-hung.entered
		claimed := time.Now()
		startRelay(t, newOutbox(t, d.open(t), b, cfg))
		got.waitUnique(t, 1, 10*time.Second)
		took := time.Since(claimed)
		close(hung.release)
		assert.GreaterOrEqual(t, took, lease-50*time.Millisecond, "taken over before the lease expired")
		assert.Less(t, took, lease+2*time.Second)
		require.Eventually(t, func() bool { return countRows(t, db, "sent_at IS NOT NULL") == 1 }, 5*time.Second, 5*time.Millisecond)
		time.Sleep(50 * time.Millisecond) // quiet period: the hung relay publishes nothing
		assert.Equal(t, 1, len(got.snapshot()))
	})
}

// TestKeyHeldByAnotherRelay: while a relay holds a key's message, another
// relay publishes other keys but not that key's later messages; they
// follow once the first is published.
func TestKeyHeldByAnotherRelay(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		b := newBroker(t, memory.Config{})
		topic := topicName(t)
		got := collect(t, b, topic, "g", 4)
		cfg := outbox.Config{PollInterval: 10 * time.Millisecond, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
		hung := newHanging(b)
		a := newOutbox(t, d.open(t), hung, cfg)
		store(t, db, a, topic, &pubsub.Message{ID: "k1", Key: "k"})
		startRelay(t, a)
		<-hung.entered // relay a holds k1

		other := newOutbox(t, d.open(t), b, cfg)
		store(t, db, other, topic, &pubsub.Message{ID: "k2", Key: "k"}, &pubsub.Message{ID: "x", Key: "x"})
		startRelay(t, other)
		got.waitUnique(t, 1, 10*time.Second)
		time.Sleep(100 * time.Millisecond) // quiet period: k2 must not follow while k1 is held
		require.Equal(t, []string{"x"}, ids(got.snapshot()))

		close(hung.release) // a's publish fails; k1 is free again
		got.waitUnique(t, 3, 10*time.Second)
		assert.Equal(t, []string{"x", "k1", "k2"}, ids(got.snapshot()))
	})
}

func ids(msgs []*pubsub.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// TestRetention: published rows are deleted after Retention, or at once
// with NoRetention; rejected rows stay.
func TestRetention(t *testing.T) {
	forEachDB(t, func(t *testing.T, _ *database, db *sql.DB) {
		for _, c := range []struct {
			name      string
			retention time.Duration
		}{{"100ms", 100 * time.Millisecond}, {"none", outbox.NoRetention}} {
			t.Run(c.name, func(t *testing.T) {
				_, err := db.Exec(`DELETE FROM switchyard_outbox`)
				require.NoError(t, err)
				b := newBroker(t, memory.Config{MaxMessageBytes: 100})
				topic := topicName(t)
				got := collect(t, b, topic, "g", 1)
				ob := newOutbox(t, db, b, outbox.Config{Retention: c.retention, PollInterval: 10 * time.Millisecond})
				store(t, db, ob, topic, pubsub.NewMessage([]byte("a")), pubsub.NewMessage(make([]byte, 200)), pubsub.NewMessage([]byte("b")))
				stop := startRelay(t, ob)
				got.waitUnique(t, 2, 10*time.Second)
				if c.retention == outbox.NoRetention {
					require.NoError(t, stop()) // the batch is settled
					assert.Equal(t, 1, countRows(t, db, "1=1"), "only the rejected row is left")
					return
				}
				require.Eventually(t, func() bool { return countRows(t, db, "1=1") == 1 }, 10*time.Second, 10*time.Millisecond)
				assert.Equal(t, 1, countRows(t, db, "failed_at IS NOT NULL"))
			})
		}
	})
}

// TestObserver: OnPending reports the backlog; OnRelayed the outcome and
// lag of each message.
func TestObserver(t *testing.T) {
	forEachDB(t, func(t *testing.T, _ *database, db *sql.DB) {
		b := newBroker(t, memory.Config{})
		topic := topicName(t)
		got := collect(t, b, topic, "g", 1)
		sw := &switchable{Publisher: b}
		sw.down.Store(true)
		var seen outcomes
		pending := make(chan outbox.Pending, 100)
		cfg := outbox.Config{
			Observer: outbox.Observer{OnRelayed: seen.observer().OnRelayed, OnPending: func(_ context.Context, p outbox.Pending) {
				select {
				case pending <- p:
				default:
				}
			}},
			StatsInterval: 10 * time.Millisecond, Backoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		}
		ob := newOutbox(t, db, sw, cfg)
		store(t, db, ob, topic, &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"})
		startRelay(t, ob)
		for p := range pending {
			if p.Rows == 2 {
				assert.Greater(t, p.OldestAge, time.Duration(0))
				break
			}
		}
		require.Eventually(t, func() bool { return sw.refused.Load() >= 2 }, 10*time.Second, time.Millisecond)
		sw.down.Store(false)
		got.waitUnique(t, 2, 10*time.Second)
		for p := range pending {
			if p.Rows == 0 {
				break
			}
		}
		out := seen.of("a")
		require.GreaterOrEqual(t, len(out), 3)
		assert.Equal(t, outbox.Failed, out[0])
		assert.Equal(t, outbox.Published, out[len(out)-1])
		seen.mu.Lock()
		defer seen.mu.Unlock()
		for _, err := range seen.errs {
			assert.ErrorIs(t, err, errDown)
		}
		for _, l := range seen.lags {
			assert.Greater(t, l, time.Duration(0))
		}
	})
}
