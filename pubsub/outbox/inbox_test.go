package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// q rewrites "?" placeholders for d.
func q(d *database, query string) string {
	if d.name != "postgres" {
		return query
	}
	out, n := []byte{}, 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, query[i])
	}
	return string(out)
}

func createEffects(t *testing.T, db *sql.DB) {
	_, err := db.Exec(`CREATE TABLE effects (msg_id TEXT NOT NULL)`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec(`DROP TABLE effects`) })
}

// acks counts the deliveries a subscription acked.
func acks(n *atomic.Int64) pubsub.SubscribeOption {
	return pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, s pubsub.Settlement) {
		if s.Outcome == pubsub.OutcomeAcked {
			n.Add(1)
		}
	}})
}

// TestInboxRedelivery delivers 1,000 messages twice each (half as adjacent
// pairs handled at the same time, half in a second round), with one
// message in ten failing its first attempt after writing its effect: each
// message's effect is committed exactly once.
func TestInboxRedelivery(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		inboxRedelivery(t, d, db, newBroker(t, memory.Config{}), topicName(t), true)
	})
}

// inboxRedelivery runs TestInboxRedelivery on b and topic. With keyOrder (a broker
// that keeps a key's order through retries), a failed first attempt is
// retried before the message's copy is handled, so exactly one run per
// fail-first message fails; otherwise the copy may fail its first attempt
// too.
func inboxRedelivery(t *testing.T, d *database, db *sql.DB, b pubsub.Broker, topic string, keyOrder bool) {
	ctx := context.Background()
	createEffects(t, db)
	var runs, failed, dups, acked atomic.Int64
	h := outbox.Idempotent(db, "g", func(ctx context.Context, tx *sql.Tx, msg *pubsub.Message) error {
		runs.Add(1)
		if _, err := tx.ExecContext(ctx, q(d, `INSERT INTO effects (msg_id) VALUES (?)`), msg.ID); err != nil {
			return err
		}
		if msg.Attempt == 1 && msg.Key == "fail-first" {
			failed.Add(1)
			return errors.New("first attempt fails after writing")
		}
		return nil
	}, outbox.WithInboxObserver(outbox.Observer{OnDuplicate: func(_ context.Context, group string, _ *pubsub.Message) {
		assert.Equal(t, "g", group)
		dups.Add(1)
	}}))
	sub, err := b.Subscribe(ctx, topic, "g", h, pubsub.WithConcurrency(8),
		pubsub.WithBackoff(time.Millisecond, 5*time.Millisecond), acks(&acked))
	require.NoError(t, err)
	defer sub.Close()

	const n = 1000
	msgs := make([]*pubsub.Message, n)
	for i := range msgs {
		msgs[i] = pubsub.NewMessage(fmt.Appendf(nil, "m%d", i))
		if i%10 == 0 {
			msgs[i].Key = "fail-first"
		}
	}
	for i := 0; i < n/2; i++ { // adjacent pairs: both copies in flight at once
		require.NoError(t, b.Publish(ctx, topic, msgs[i], msgs[i].Clone()))
	}
	for _, round := range []int{1, 2} {
		for i := n / 2; i < n; i++ {
			require.NoError(t, b.Publish(ctx, topic, msgs[i].Clone()), "round %d", round)
		}
	}
	require.Eventually(t, func() bool { return acked.Load() == 2*n }, 2*time.Minute, 5*time.Millisecond)

	var total, distinct int
	require.NoError(t, db.QueryRow(`SELECT count(*), count(DISTINCT msg_id) FROM effects`).Scan(&total, &distinct))
	assert.Equal(t, n, total, "effects committed")
	assert.Equal(t, n, distinct, "messages with an effect")
	assert.Equal(t, int64(n), dups.Load(), "deliveries acked as duplicates")
	if keyOrder {
		assert.Equal(t, int64(n/10), failed.Load(), "first attempts that failed")
	} else {
		assert.GreaterOrEqual(t, failed.Load(), int64(n/10), "first attempts that failed")
	}
	assert.Equal(t, int64(n)+failed.Load(), runs.Load(), "handler runs: one per message, plus the failed first attempts")
	var records int
	require.NoError(t, db.QueryRow(q(d, `SELECT count(*) FROM switchyard_inbox WHERE grp = ?`), "g").Scan(&records))
	assert.Equal(t, n, records)
	t.Logf("%d messages delivered twice: %d effects, %d duplicates acked, %d failed first attempts", n, total, dups.Load(), failed.Load())
}

// TestInboxGroupsAndRetention: groups deduplicate apart; a record past
// retention is deleted, in the background or by PurgeInbox, after which a
// redelivery runs the handler again.
func TestInboxGroupsAndRetention(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		ctx := context.Background()
		var runs atomic.Int64
		h := func(context.Context, *sql.Tx, *pubsub.Message) error { runs.Add(1); return nil }
		a := outbox.Idempotent(db, "a", h, outbox.WithInboxRetention(150*time.Millisecond))
		other := outbox.Idempotent(db, "other", h)
		m := &pubsub.Message{ID: "m1", Attempt: 1}
		require.NoError(t, a(ctx, m))
		require.NoError(t, a(ctx, m))
		require.NoError(t, other(ctx, m))
		assert.Equal(t, int64(2), runs.Load(), "once per group")

		count := func() (n int) {
			require.NoError(t, db.QueryRow(`SELECT count(*) FROM switchyard_inbox`).Scan(&n))
			return n
		}
		time.Sleep(200 * time.Millisecond) // let m1's record of "a" pass its retention
		require.NoError(t, a(ctx, &pubsub.Message{ID: "m2", Attempt: 1}))
		require.Eventually(t, func() bool { return count() == 2 }, 10*time.Second, 10*time.Millisecond,
			"m1 of group a deleted in the background; m2 of a and m1 of other kept")
		require.NoError(t, a(ctx, m))
		assert.Equal(t, int64(4), runs.Load(), "m1 ran again in group a after its record expired")

		n, err := outbox.PurgeInbox(ctx, db, "a", time.Now().Add(time.Second))
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		assert.Equal(t, 1, count(), "other's record kept")
	})
}

// TestInboxRollsBackOnFailure: an error, a panic or a Permanent error
// leaves no record, so the next delivery runs again.
func TestInboxRollsBackOnFailure(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		ctx := context.Background()
		createEffects(t, db)
		var runs int
		boom := errors.New("boom")
		h := outbox.Idempotent(db, "g", func(ctx context.Context, tx *sql.Tx, msg *pubsub.Message) error {
			runs++
			if _, err := tx.ExecContext(ctx, q(d, `INSERT INTO effects (msg_id) VALUES (?)`), msg.ID); err != nil {
				return err
			}
			switch runs {
			case 1:
				return boom
			case 2:
				return pubsub.Permanent(boom)
			case 3:
				panic("handler panics")
			}
			return nil
		})
		m := &pubsub.Message{ID: "m", Attempt: 1}
		assert.ErrorIs(t, h(ctx, m), boom)
		err := h(ctx, m)
		assert.True(t, pubsub.IsPermanent(err), "Permanent passes through: %v", err)
		assert.Panics(t, func() { _ = h(ctx, m) })
		require.NoError(t, h(ctx, m))
		require.NoError(t, h(ctx, m))
		assert.Equal(t, 4, runs)
		var effects int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM effects`).Scan(&effects))
		assert.Equal(t, 1, effects, "only the run that returned nil left its effect")

		err = h(ctx, &pubsub.Message{})
		assert.True(t, pubsub.IsPermanent(err), "a message without ID: %v", err)
	})
}

func TestIdempotentPanicsOnMisuse(t *testing.T) {
	db := openSQLite(t, sqliteURL(t))
	h := func(context.Context, *sql.Tx, *pubsub.Message) error { return nil }
	assert.Panics(t, func() { outbox.Idempotent(nil, "g", h) })
	assert.Panics(t, func() { outbox.Idempotent(db, "", h) })
	assert.Panics(t, func() { outbox.Idempotent(db, "g", nil) })
	assert.Panics(t, func() { outbox.Idempotent(db, "g", h, outbox.WithInboxTable("bad name")) })
	assert.Panics(t, func() { outbox.Idempotent(db, "g", h, outbox.WithInboxRetention(0)) })
	assert.NotPanics(t, func() { outbox.Idempotent(db, "g", h, outbox.WithInboxDialect(outbox.SQLite)) })
}
