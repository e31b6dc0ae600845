package txstore

import (
	"context"
	"fmt"
	"time"
)

// Transaction is one row of the transactions table.
type Transaction struct {
	ID          int64
	AccountID   string
	OccurredAt  time.Time
	AmountCents int64
	Currency    string
	Description string
}

// Amount returns the amount in major units with two decimals ("-12.34").
func (t Transaction) Amount() string {
	sign, c := "", t.AmountCents
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// CountTransactions returns the number of transactions.
func (s *Store) CountTransactions(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM transactions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("txstore: count transactions: %w", err)
	}
	return n, nil
}

// EachTransaction calls fn for every transaction with from <= OccurredAt <
// to, in (OccurredAt, ID) order, streaming them from a database cursor: the
// range is never held in memory. It stops at fn's first error and returns it.
func (s *Store) EachTransaction(ctx context.Context, from, to time.Time, fn func(*Transaction) error) error {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT id, account_id, occurred_at, amount_cents, currency, description
		FROM transactions WHERE occurred_at >= ? AND occurred_at <= ? ORDER BY occurred_at, id`),
		s.d.time(from), s.d.time(lastInstant(to)))
	if err != nil {
		return fmt.Errorf("txstore: query transactions: %w", err)
	}
	defer rows.Close()
	var t Transaction
	for rows.Next() {
		if err := rows.Scan(&t.ID, &t.AccountID, timeScanner{&t.OccurredAt}, &t.AmountCents, &t.Currency, &t.Description); err != nil {
			return fmt.Errorf("txstore: scan transaction: %w", err)
		}
		if err := fn(&t); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("txstore: read transactions: %w", err)
	}
	return nil
}

// lastInstant returns the last stored instant before to: times are stored
// to the microsecond, so "<= lastInstant(to)" is "< to". Queries compare
// with it because to may lie in year 10000 (the range ending 9999-12-31),
// which SQLite's fixed-width text would order before year 9999; the last
// instant stays within the accepted range.
func lastInstant(to time.Time) time.Time { return to.Add(-time.Microsecond) }

// CountTransactionsBetween returns the number of transactions with from <=
// OccurredAt < to.
func (s *Store) CountTransactionsBetween(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT COUNT(*) FROM transactions WHERE occurred_at >= ? AND occurred_at <= ?`),
		s.d.time(from), s.d.time(lastInstant(to))).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("txstore: count transactions: %w", err)
	}
	return n, nil
}

// InsertTransactions inserts txs in one database transaction. Their times
// must lie in the accepted range (MinDate to the end of MaxDate); their IDs
// must be new.
func (s *Store) InsertTransactions(ctx context.Context, txs ...Transaction) error {
	end := MaxDate.AddDate(0, 0, 1)
	for _, t := range txs {
		if t.OccurredAt.Before(MinDate) || !t.OccurredAt.Before(end) {
			return fmt.Errorf("txstore: transaction %d at %s: outside %s..%s", t.ID, t.OccurredAt, MinDate.Format(DateLayout), MaxDate.Format(DateLayout))
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("txstore: insert transactions: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, t := range txs {
		if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO transactions (id, account_id, occurred_at, amount_cents, currency, description) VALUES (?, ?, ?, ?, ?, ?)`),
			t.ID, t.AccountID, s.d.time(t.OccurredAt), t.AmountCents, t.Currency, t.Description); err != nil {
			return fmt.Errorf("txstore: insert transaction %d: %w", t.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("txstore: insert transactions: %w", err)
	}
	return nil
}
