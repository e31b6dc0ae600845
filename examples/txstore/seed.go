package txstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// SeedStart and SeedEnd bound the times of seeded transactions: the year
// 2025 (SeedEnd excluded).
var (
	SeedStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	SeedEnd   = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// descriptions of seeded transactions; some need CSV quoting.
var descriptions = []string{
	"Coffee, large",
	`Subscription "Premium" plan`,
	"Groceries",
	"Refund\nsecond line",
	"Café au lait",
	"Rent",
	"Transfer to savings",
	"Book: \"Go, in practice\"",
	"Train ticket",
	"  leading and trailing spaces  ",
}

var currencies = []string{"EUR", "USD", "GBP"}

// seedBatch is how many rows one INSERT statement carries.
const seedBatch = 500

// Seed makes the transactions table hold n sample transactions when it is
// empty, spread over the year 2025, and returns how many it inserted (0 when
// the table was not empty: CountTransactions then tells how many it has).
// Processes seeding one database at once seed it once. The data is deterministic: the same n gives the
// same rows. progress, if not nil, is called after each committed chunk.
func (s *Store) Seed(ctx context.Context, n int, progress func(done int)) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	rng := rand.New(rand.NewPCG(42, uint64(n)))
	span := SeedEnd.Sub(SeedStart)
	const chunk = 20 * seedBatch // rows per database transaction
	for done := 0; done < n; {
		m := min(chunk, n-done)
		inserted, err := s.insertChunk(ctx, rng, span, done, m, done == 0)
		if err != nil {
			return done, err
		}
		if !inserted {
			return 0, nil // the table was not empty
		}
		done += m
		if progress != nil {
			progress(done)
		}
	}
	return n, nil
}

// Reseed deletes every transaction and then seeds n, as Seed does on an
// empty table. Export requests are kept.
func (s *Store) Reseed(ctx context.Context, n int, progress func(done int)) (int, error) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM transactions`); err != nil {
		return 0, fmt.Errorf("txstore: reseed: %w", err)
	}
	return s.Seed(ctx, n, progress)
}

// insertChunk inserts n seeded rows in one database transaction. With
// ifEmpty it first checks, under the database's write lock (SQLite's
// immediate transaction, a PostgreSQL advisory lock), that the table is
// empty, and inserts nothing (false) if not: two processes seeding one
// database at once seed it once.
func (s *Store) insertChunk(ctx context.Context, rng *rand.Rand, span time.Duration, first, n int, ifEmpty bool) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("txstore: seed: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if ifEmpty {
		if s.d.name == "postgres" {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7204162)`); err != nil {
				return false, fmt.Errorf("txstore: seed: lock: %w", err)
			}
		}
		var any int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM transactions LIMIT 1) AS t`).Scan(&any)
		if err != nil {
			return false, fmt.Errorf("txstore: seed: %w", err)
		}
		if any > 0 {
			return false, nil
		}
	}
	for off := 0; off < n; off += seedBatch {
		m := min(seedBatch, n-off)
		var q strings.Builder
		q.WriteString(`INSERT INTO transactions (id, account_id, occurred_at, amount_cents, currency, description) VALUES `)
		args := make([]any, 0, 6*m)
		for i := range m {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?)")
			at := SeedStart.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Second)
			amount := rng.Int64N(200_000) - 50_000
			args = append(args,
				int64(first+off+i+1),
				fmt.Sprintf("ACC-%04d", rng.IntN(100)+1),
				s.d.time(at),
				amount,
				currencies[rng.IntN(len(currencies))],
				descriptions[rng.IntN(len(descriptions))],
			)
		}
		if _, err := tx.ExecContext(ctx, s.d.q(q.String()), args...); err != nil {
			return false, fmt.Errorf("txstore: seed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("txstore: seed: %w", err)
	}
	return true, nil
}
