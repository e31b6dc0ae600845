package txstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/testdb"
	"github.com/switchyard-go/switchyard/examples/txstore"
)

var databases = []struct {
	name string
	url  func(testing.TB) string
}{{"sqlite", testdb.SQLite}, {"postgres", testdb.Postgres}}

// TestDateRangeEdges: a range ending on the last accepted date (its
// exclusive bound is in year 10000) holds the rows up to the last
// microsecond of 9999, and one starting on the first accepted date those
// from its first instant, on SQLite as on PostgreSQL.
func TestDateRangeEdges(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := txstore.Open(ctx, db.url(t))
			require.NoError(t, err)
			defer s.Close()
			at := []time.Time{
				txstore.MinDate,
				time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
				time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
			}
			var txs []txstore.Transaction
			for i, t := range at {
				txs = append(txs, txstore.Transaction{ID: int64(i + 1), AccountID: "ACC-1", OccurredAt: t, AmountCents: 100, Currency: "EUR", Description: "edge"})
			}
			require.NoError(t, s.InsertTransactions(ctx, txs...))
			for _, tc := range []struct {
				start, end string
				want       []int64
			}{
				{"2025-01-01", "9999-12-31", []int64{2, 3}},
				{"2025-01-01", "9999-12-30", []int64{2}},
				{"0001-01-01", "9999-12-31", []int64{1, 2, 3}},
				{"0001-01-01", "0001-01-01", []int64{1}},
				{"9999-12-31", "9999-12-31", []int64{3}},
			} {
				from, to, err := txstore.ParseDateRange(tc.start, tc.end)
				require.NoError(t, err)
				var got []int64
				require.NoError(t, s.EachTransaction(ctx, from, to, func(tx *txstore.Transaction) error {
					got = append(got, tx.ID)
					return nil
				}))
				assert.Equal(t, tc.want, got, "%s..%s", tc.start, tc.end)
				n, err := s.CountTransactionsBetween(ctx, from, to)
				require.NoError(t, err)
				assert.Equal(t, int64(len(tc.want)), n, "count %s..%s", tc.start, tc.end)
			}
			var last []time.Time
			require.NoError(t, s.EachTransaction(ctx, txstore.MinDate, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), func(tx *txstore.Transaction) error {
				last = append(last, tx.OccurredAt)
				return nil
			}))
			assert.Equal(t, at, last, "times come back to the microsecond")
			assert.Error(t, s.InsertTransactions(ctx, txstore.Transaction{ID: 9, OccurredAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}), "outside the accepted range")
		})
	}
}

// TestMain lets the test binary open a store in a child process: with
// TXSTORE_OPEN_URL set it opens that database, seeds it and exits 0, or
// prints the error and exits 1.
func TestMain(m *testing.M) {
	if url := os.Getenv("TXSTORE_OPEN_URL"); url != "" {
		s, err := txstore.Open(context.Background(), url)
		if err == nil {
			_, err = s.Seed(context.Background(), 10, nil)
			err = errors.Join(err, s.Close())
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestOpenConcurrently: processes that open a new SQLite file at the same
// moment (transactions and exporters started together) all succeed: the
// schema is created under the database's write lock and a busy database is
// waited for, not an error.
//
// Each round starts 6 processes; 3 rounds by default (the races showed in
// about one run in three of 12 rounds of 8), 12 rounds of 8 with the build
// tag stress:
//
//	go test -tags stress -run TestOpenConcurrently ./examples/txstore
func TestOpenConcurrently(t *testing.T) {
	for round := range openRounds {
		url := "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("race-%d.db", round))
		var wg sync.WaitGroup
		for i := range openProcesses {
			wg.Go(func() {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "TXSTORE_OPEN_URL="+url)
				out, err := cmd.CombinedOutput()
				assert.NoError(t, err, "round %d, process %d: %s", round, i, out)
			})
		}
		wg.Wait()
	}
}

// TestReseed: Seed leaves a table with rows alone and says how many it
// holds; Reseed replaces them.
func TestReseed(t *testing.T) {
	ctx := context.Background()
	s, err := txstore.Open(ctx, testdb.SQLite(t))
	require.NoError(t, err)
	defer s.Close()
	n, err := s.Seed(ctx, 300, nil)
	require.NoError(t, err)
	assert.Equal(t, 300, n)
	n, err = s.Seed(ctx, 50, nil)
	require.NoError(t, err)
	assert.Zero(t, n)
	n, err = s.Reseed(ctx, 50, nil)
	require.NoError(t, err)
	assert.Equal(t, 50, n)
	have, err := s.CountTransactions(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(50), have)
}

// TestOpenUpgradesOldSchema: a database made by the first release (no
// lease or idempotency columns, a published_at column) is upgraded in
// place by Open and keeps its requests.
func TestOpenUpgradesOldSchema(t *testing.T) {
	ctx := context.Background()
	url := testdb.SQLite(t)
	db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite:"))
	require.NoError(t, err)
	for _, stmt := range []string{
		`CREATE TABLE export_requests (rid TEXT PRIMARY KEY, start_date TEXT NOT NULL, end_date TEXT NOT NULL,
			callback_url TEXT NOT NULL DEFAULT '', download_url TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
			progress BIGINT NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', object_key TEXT NOT NULL DEFAULT '',
			worker TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
			published_at TEXT NULL, notified_at TEXT NULL)`,
		`INSERT INTO export_requests (rid, start_date, end_date, status, created_at, updated_at)
			VALUES ('old', '2025-01-01', '2025-01-02', 'pending', '2025-05-01T00:00:00.000000Z', '2025-05-01T00:00:00.000000Z')`,
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	s, err := txstore.Open(ctx, url)
	require.NoError(t, err)
	defer s.Close()
	e, err := s.Export(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, "pending", e.Status)
	ok, err := s.Claim(ctx, "old", "w", "t", time.Minute)
	require.NoError(t, err)
	assert.True(t, ok)
	require.NoError(t, s.CreateExport(ctx, txstore.Export{RID: "new", StartDate: "2025-01-01", EndDate: "2025-01-02", IdempotencyKey: "k"}))
	require.NoError(t, s.Close())
	s, err = txstore.Open(ctx, url)
	require.NoError(t, err, "opening again changes nothing")
	require.NoError(t, s.Close())
}
