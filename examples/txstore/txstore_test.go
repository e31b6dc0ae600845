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
	assert.True(t, e.PublishedAt.IsZero())
	assert.WithinDuration(t, time.Now(), e.CreatedAt, time.Minute)

	due, err := s.ExportsToPublish(ctx, 0, time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, due, 1, "unpublished pending request is due")
	require.NoError(t, s.MarkPublished(ctx, "r1"))
	due, err = s.ExportsToPublish(ctx, 0, time.Hour, 10)
	require.NoError(t, err)
	assert.Empty(t, due, "published and fresh: not due")

	ok, err := s.Claim(ctx, "r1", "w1")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.Claim(ctx, "r1", "w2")
	require.NoError(t, err)
	assert.False(t, ok, "a running export is not claimed twice")
	require.NoError(t, s.Progress(ctx, "r1", "w1", 10))
	e, _ = s.Export(ctx, "r1")
	assert.Equal(t, int64(10), e.Progress)

	due, err = s.ExportsToPublish(ctx, 0, 0, 10)
	require.NoError(t, err)
	assert.Len(t, due, 1, "stale running export is due")
	requeued, err := s.Requeue(ctx, "r1", 0)
	require.NoError(t, err)
	assert.True(t, requeued)
	ok, err = s.Finish(ctx, "r1", "w1", events.StatusCompleted, 10, "k", "")
	require.NoError(t, err)
	assert.False(t, ok, "w1 lost its claim when the export was requeued")

	ok, err = s.Claim(ctx, "r1", "w2")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.Finish(ctx, "r1", "w2", events.StatusCompleted, 42, "exports/r1.csv", "")
	require.NoError(t, err)
	assert.True(t, ok)
	e, _ = s.Export(ctx, "r1")
	assert.Equal(t, events.StatusCompleted, e.Status)
	assert.Equal(t, int64(42), e.Progress)
	assert.Equal(t, "exports/r1.csv", e.ObjectKey)
	assert.True(t, e.NotifiedAt.IsZero())
	require.NoError(t, s.MarkNotified(ctx, "r1"))
	e, _ = s.Export(ctx, "r1")
	assert.False(t, e.NotifiedAt.IsZero())
	due, err = s.ExportsToPublish(ctx, 0, 0, 10)
	require.NoError(t, err)
	assert.Empty(t, due, "finished exports are never due")
}

func TestOpenURLs(t *testing.T) {
	for _, bad := range []string{"", "mysql://x", "sqlite://"} {
		_, err := txstore.Open(context.Background(), bad)
		assert.Error(t, err, bad)
	}
}
