package txstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/testdb"
	"github.com/switchyard-go/switchyard/examples/txstore"
)

func TestStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", testdb.SQLite}, {"postgres", testdb.Postgres}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := txstore.Open(ctx, tc.url(t))
			require.NoError(t, err)
			defer s.Close()
			assert.Equal(t, tc.name, s.Dialect())
			testSeedAndRange(t, s)
			testExportLifecycle(t, s)
		})
	}
}

func testSeedAndRange(t *testing.T, s *txstore.Store) {
	ctx := context.Background()
	n, err := s.Seed(ctx, 1200, nil)
	require.NoError(t, err)
	assert.Equal(t, 1200, n)
	n, err = s.Seed(ctx, 1200, nil)
	require.NoError(t, err)
	assert.Zero(t, n, "a seeded table is not seeded again")

	from := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	var got []txstore.Transaction
	require.NoError(t, s.EachTransaction(ctx, from, to, func(tx *txstore.Transaction) error {
		got = append(got, *tx)
		return nil
	}))
	count, err := s.CountTransactionsBetween(ctx, from, to)
	require.NoError(t, err)
	assert.Len(t, got, int(count))
	assert.Greater(t, count, int64(50), "about a twelfth of 1200")
	for i, tx := range got {
		assert.False(t, tx.OccurredAt.Before(from) || !tx.OccurredAt.Before(to), "row %d at %s out of range", i, tx.OccurredAt)
		if i > 0 {
			assert.False(t, tx.OccurredAt.Before(got[i-1].OccurredAt), "rows ordered by time")
		}
	}
}

func testExportLifecycle(t *testing.T, s *txstore.Store) {
	ctx := context.Background()
	_, err := s.Export(ctx, "nope")
	assert.ErrorIs(t, err, txstore.ErrNotFound)

	require.NoError(t, s.CreateExport(ctx, txstore.Export{RID: "r1", StartDate: "2025-01-01", EndDate: "2025-01-31", CallbackURL: "http://cb"}))
	e, err := s.Export(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, events.StatusPending, e.Status)
	assert.WithinDuration(t, time.Now(), e.CreatedAt, time.Minute)

	const lease = time.Hour
	ok, err := s.Claim(ctx, "r1", "w1", "w1-a", lease)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.Claim(ctx, "r1", "w2", "w2-a", lease)
	require.NoError(t, err)
	assert.False(t, ok, "a running export under a live lease is not claimed by another worker")
	ok, err = s.Claim(ctx, "r1", "w1", "w1-a", lease)
	require.NoError(t, err)
	assert.False(t, ok, "nor again by the process that holds it (a duplicate delivery)")
	ok, err = s.Progress(ctx, "r1", "w1-a", 10, lease)
	require.NoError(t, err)
	assert.True(t, ok)
	e, _ = s.Export(ctx, "r1")
	assert.Equal(t, int64(10), e.Progress)
	assert.Equal(t, "w1-a", e.Token)
	assert.WithinDuration(t, time.Now().Add(lease), e.LeaseUntil, time.Minute)

	// The worker restarts (same name, new token): it re-claims at once.
	ok, err = s.Claim(ctx, "r1", "w1", "w1-b", lease)
	require.NoError(t, err)
	assert.True(t, ok, "a restarted worker re-claims its own export at once")
	ok, err = s.Heartbeat(ctx, "r1", "w1-a", lease)
	require.NoError(t, err)
	assert.False(t, ok, "the old process lost its claim")
	ok, err = s.Finish(ctx, "r1", "w1-a", events.StatusCompleted, 10, "k", "")
	require.NoError(t, err)
	assert.False(t, ok, "and cannot finish it")

	// Its lease expires: another worker may claim it.
	ok, err = s.Heartbeat(ctx, "r1", "w1-b", -time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	tx, err := s.BeginTx(ctx)
	require.NoError(t, err)
	requeued, err := s.RequeueExpired(ctx, tx, 10)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Len(t, requeued, 1)
	assert.Equal(t, "r1", requeued[0].RID)
	assert.Equal(t, events.StatusPending, requeued[0].Status)
	ok, err = s.Claim(ctx, "r1", "w2", "w2-a", lease)
	require.NoError(t, err)
	require.True(t, ok)

	// A worker that restarts hands back what its previous process held.
	tx, err = s.BeginTx(ctx)
	require.NoError(t, err)
	mine, err := s.RequeueWorker(ctx, tx, "w2", "w2-a")
	require.NoError(t, err)
	assert.Empty(t, mine, "w2-a is this process: nothing to hand back")
	mine, err = s.RequeueWorker(ctx, tx, "w2", "w2-b")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Len(t, mine, 1)
	ok, err = s.Claim(ctx, "r1", "w2", "w2-b", lease)
	require.NoError(t, err)
	require.True(t, ok)

	ok, err = s.Finish(ctx, "r1", "w2-b", events.StatusCompleted, 42, "exports/r1.csv", "")
	require.NoError(t, err)
	assert.True(t, ok)
	e, _ = s.Export(ctx, "r1")
	assert.Equal(t, events.StatusCompleted, e.Status)
	assert.Equal(t, int64(42), e.Progress)
	assert.Equal(t, "exports/r1.csv", e.ObjectKey)
	ok, err = s.Claim(ctx, "r1", "w3", "w3-a", lease)
	require.NoError(t, err)
	assert.False(t, ok, "finished exports are never claimed")

	// Idempotency keys: unique while held, released once too old.
	tx, err = s.BeginTx(ctx)
	require.NoError(t, err)
	_, err = s.ExportByIdempotencyKey(ctx, tx, "k1", time.Now().Add(-time.Hour))
	assert.ErrorIs(t, err, txstore.ErrNotFound)
	require.NoError(t, s.CreateExportTx(ctx, tx, txstore.Export{RID: "r2", StartDate: "2025-01-01", EndDate: "2025-01-02", IdempotencyKey: "k1", RequestHash: "h"}))
	require.NoError(t, tx.Commit())
	err = s.CreateExport(ctx, txstore.Export{RID: "r3", StartDate: "2025-01-01", EndDate: "2025-01-02", IdempotencyKey: "k1"})
	assert.ErrorIs(t, err, txstore.ErrDuplicateKey)
	e, err = s.ExportByIdempotencyKey(ctx, s.DB(), "k1", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "r2", e.RID)
	assert.Equal(t, "h", e.RequestHash)
	_, err = s.ExportByIdempotencyKey(ctx, s.DB(), "k1", time.Now().Add(time.Minute))
	assert.ErrorIs(t, err, txstore.ErrNotFound, "a key older than since is released")
	require.NoError(t, s.CreateExport(ctx, txstore.Export{RID: "r3", StartDate: "2025-01-01", EndDate: "2025-01-02", IdempotencyKey: "k1"}))
}

func TestOpenURLs(t *testing.T) {
	for _, bad := range []string{"", "mysql://x", "sqlite://"} {
		_, err := txstore.Open(context.Background(), bad)
		assert.Error(t, err, bad)
	}
}
