package txstore

import (
	"context"
	"fmt"
)

var schema = []string{
	`CREATE TABLE IF NOT EXISTS transactions (
		id           BIGINT PRIMARY KEY,
		account_id   TEXT NOT NULL,
		occurred_at  TIMESTAMP NOT NULL,
		amount_cents BIGINT NOT NULL,
		currency     TEXT NOT NULL,
		description  TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS transactions_occurred_at ON transactions (occurred_at, id)`,
	`CREATE TABLE IF NOT EXISTS export_requests (
		rid          TEXT PRIMARY KEY,
		start_date   TEXT NOT NULL,
		end_date     TEXT NOT NULL,
		callback_url TEXT NOT NULL DEFAULT '',
		download_url TEXT NOT NULL DEFAULT '',
		status       TEXT NOT NULL,
		progress     BIGINT NOT NULL DEFAULT 0,
		error        TEXT NOT NULL DEFAULT '',
		object_key   TEXT NOT NULL DEFAULT '',
		worker       TEXT NOT NULL DEFAULT '',
		created_at   TIMESTAMP NOT NULL,
		updated_at   TIMESTAMP NOT NULL,
		published_at TIMESTAMP NULL,
		notified_at  TIMESTAMP NULL
	)`,
	`CREATE INDEX IF NOT EXISTS export_requests_status ON export_requests (status, updated_at)`,
}

// migrate creates the tables. On PostgreSQL an advisory lock keeps two
// processes starting at once from racing on CREATE TABLE.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("txstore: connect to %s: %w", s.d.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if s.d.name == "postgres" {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7204161)`); err != nil {
			return fmt.Errorf("txstore: lock for migration: %w", err)
		}
	}
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, s.d.q(stmt)); err != nil {
			return fmt.Errorf("txstore: create schema: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("txstore: create schema: %w", err)
	}
	return nil
}
