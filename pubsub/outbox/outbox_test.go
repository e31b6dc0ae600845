package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// TestRoundTrip: committed messages arrive unchanged (ID, key, metadata,
// binary payload), in order; rolled-back ones never do; the typed form
// carries the codec's metadata.
func TestRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, _ *database, db *sql.DB) {
		ctx := context.Background()
		b := newBroker(t, memory.Config{})
		topic := topicName(t)
		got := collect(t, b, topic, "g", 1)
		ob := newOutbox(t, db, b, outbox.Config{})

		payload := []byte{0, 0xff, 0xfe, 'x', 0x80}
		m1 := &pubsub.Message{ID: "id-1", Key: "k", Metadata: map[string]string{"a": "1", "nul": "x\x00y", "ü": "ß"}, Payload: payload}
		m2 := &pubsub.Message{Key: "k", Payload: []byte("second")} // ID set by Publish
		store(t, db, ob, topic, m1, m2)
		require.Len(t, m2.ID, 32, "Publish sets missing IDs")

		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, ob.Publish(ctx, tx, topic, &pubsub.Message{ID: "rolled-back", Payload: []byte("no")}))
		require.NoError(t, tx.Rollback())

		type event struct{ N int }
		typed := pubsub.NewTopic[event](topic)
		tx, err = db.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, typed.Publish(ctx, ob.Tx(tx), event{N: 7}, pubsub.WithKey("k"), pubsub.WithID("typed")))
		require.NoError(t, tx.Commit())

		stop := startRelay(t, ob)
		got.waitUnique(t, 3, 10*time.Second)
		require.NoError(t, stop())
		msgs := got.snapshot()
		require.Len(t, msgs, 3)
		assert.Equal(t, "id-1", msgs[0].ID)
		assert.Equal(t, "k", msgs[0].Key)
		assert.Equal(t, payload, msgs[0].Payload)
		assert.Equal(t, m1.Metadata, msgs[0].Metadata)
		assert.Equal(t, m2.ID, msgs[1].ID)
		assert.Equal(t, []byte("second"), msgs[1].Payload)
		assert.Empty(t, msgs[1].Metadata)
		assert.Equal(t, "typed", msgs[2].ID)
		assert.JSONEq(t, `{"N":7}`, string(msgs[2].Payload))
		assert.Equal(t, "application/json", msgs[2].Metadata[pubsub.MetadataContentType])
		assert.Equal(t, "typed", msgs[2].Metadata[pubsub.MetadataCEID])

		p, err := ob.Pending(ctx)
		require.NoError(t, err)
		assert.Equal(t, outbox.Pending{}, p)
	})
}

// TestPublishValidates: bad input is refused before any I/O and nothing is
// stored.
func TestPublishValidates(t *testing.T) {
	forEachDB(t, func(t *testing.T, _ *database, db *sql.DB) {
		ctx := context.Background()
		ob := newOutbox(t, db, nil, outbox.Config{})
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck
		for _, c := range []struct {
			name  string
			topic string
			msg   *pubsub.Message
			want  error
		}{
			{"bad topic", "a/b", pubsub.NewMessage(nil), pubsub.ErrInvalidTopic},
			{"empty topic", "", pubsub.NewMessage(nil), pubsub.ErrInvalidTopic},
			{"nil message", "t", nil, pubsub.ErrInvalidMessage},
			{"key not UTF-8", "t", &pubsub.Message{Key: "\xff"}, pubsub.ErrInvalidMessage},
			{"ID with NUL", "t", &pubsub.Message{ID: "a\x00"}, pubsub.ErrInvalidMessage},
			{"metadata not UTF-8", "t", &pubsub.Message{Metadata: map[string]string{"k": "\xfe"}}, pubsub.ErrInvalidMessage},
		} {
			t.Run(c.name, func(t *testing.T) {
				err := ob.Publish(ctx, tx, c.topic, pubsub.NewMessage([]byte("ok")), c.msg)
				assert.ErrorIs(t, err, c.want)
			})
		}
		assert.ErrorIs(t, ob.Publish(ctx, nil, "t", pubsub.NewMessage(nil)), pubsub.ErrInvalidOption)
		require.NoError(t, tx.Commit())
		p, err := ob.Pending(ctx)
		require.NoError(t, err)
		assert.Zero(t, p.Rows)
	})
}

func TestNewValidates(t *testing.T) {
	db := openSQLite(t, sqliteURL(t))
	_, err := outbox.New(nil, outbox.Config{})
	assert.ErrorIs(t, err, pubsub.ErrInvalidOption)
	_, err = outbox.New(db, outbox.Config{BatchSize: -1, Lease: time.Second, PublishTimeout: 2 * time.Second, Table: "x;drop", Retention: -5})
	require.ErrorIs(t, err, pubsub.ErrInvalidOption)
	for _, want := range []string{"BatchSize -1", "PublishTimeout 2s", `table name "x;drop"`, "Retention -5ns"} {
		assert.ErrorContains(t, err, want)
	}
	ob, err := outbox.New(db, outbox.Config{})
	require.NoError(t, err)
	assert.ErrorIs(t, ob.Run(context.Background()), pubsub.ErrInvalidOption, "Run without a Publisher")

	stmts, err := outbox.Schema(outbox.Config{Dialect: outbox.Postgres, Table: "app.events_outbox"})
	require.NoError(t, err)
	assert.Contains(t, stmts[0], "CREATE TABLE IF NOT EXISTS app.events_outbox (")
	assert.Contains(t, stmts[1], "CREATE INDEX IF NOT EXISTS events_outbox_pending ON app.events_outbox")
	_, err = outbox.Schema(outbox.Config{})
	assert.ErrorIs(t, err, pubsub.ErrInvalidOption)
	assert.Equal(t, "sqlite", outbox.SQLite.String())
}

// TestDetectsDialect: New and Migrate pick the dialect from the driver.
func TestDetectsDialect(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *database, db *sql.DB) {
		// forEachDB migrated with a detected dialect; a round trip on the
		// tables proves it right.
		ob := newOutbox(t, db, nil, outbox.Config{})
		store(t, db, ob, "t", pubsub.NewMessage([]byte("x")))
		p, err := ob.Pending(context.Background())
		require.NoError(t, err)
		assert.Equal(t, int64(1), p.Rows)
		assert.Greater(t, p.OldestAge, time.Duration(0))
	})
}

// TestRunStopsWhenPublisherClosed: a closed broker ends Run with ErrClosed.
func TestRunStopsWhenPublisherClosed(t *testing.T) {
	db := openSQLite(t, sqliteURL(t))
	require.NoError(t, outbox.Migrate(context.Background(), db, outbox.Config{}))
	b := newBroker(t, memory.Config{})
	require.NoError(t, b.Close())
	ob := newOutbox(t, db, b, outbox.Config{})
	store(t, db, ob, "t", pubsub.NewMessage([]byte("x")))
	err := ob.Run(context.Background())
	require.ErrorIs(t, err, pubsub.ErrClosed)
	p, err2 := ob.Pending(context.Background())
	require.NoError(t, err2)
	assert.Equal(t, int64(1), p.Rows, "the message stays pending")
	assert.False(t, errors.Is(err, context.Canceled))
}
