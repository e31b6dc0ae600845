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
		FROM transactions WHERE occurred_at >= ? AND occurred_at < ? ORDER BY occurred_at, id`),
		s.d.time(from), s.d.time(to))
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

// CountTransactionsBetween returns the number of transactions with from <=
// OccurredAt < to.
func (s *Store) CountTransactionsBetween(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT COUNT(*) FROM transactions WHERE occurred_at >= ? AND occurred_at < ?`),
		s.d.time(from), s.d.time(to)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("txstore: count transactions: %w", err)
	}
	return n, nil
}
