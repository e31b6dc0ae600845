package txstore

import (
	"context"
	"database/sql"
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
		updated_at   TIMESTAMP NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS export_requests_status ON export_requests (status, updated_at)`,
}

// addedColumns are the export_requests columns added since the first
// release, added to tables made by it.
var addedColumns = []struct{ name, def string }{
	{"claim_token", "TEXT NOT NULL DEFAULT ''"},
	{"lease_until", "TIMESTAMP NULL"},
	{"idempotency_key", "TEXT NULL"},
	{"request_hash", "TEXT NOT NULL DEFAULT ''"},
}

// afterColumns run once the added columns exist.
var afterColumns = []string{
	`CREATE UNIQUE INDEX IF NOT EXISTS export_requests_idempotency_key ON export_requests (idempotency_key)`,
	`CREATE INDEX IF NOT EXISTS export_requests_lease ON export_requests (status, lease_until)`,
}

// columns returns the names of table's columns.
func (s *Store) columns(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	q := `SELECT name FROM pragma_table_info('` + table + `')`
	if s.d.name == "postgres" {
		q = `SELECT column_name FROM information_schema.columns WHERE table_name = '` + table + `' AND table_schema = current_schema()`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("txstore: read schema: %w", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("txstore: read schema: %w", err)
		}
		have[n] = true
	}
	return have, rows.Err()
}

// migrate creates the tables, and adds the columns of later releases to
// tables made by earlier ones. On PostgreSQL an advisory lock keeps two
// processes starting at once from racing on CREATE TABLE; on SQLite the
// transaction holds the write lock from its start.
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
	have, err := s.columns(ctx, tx, "export_requests")
	if err != nil {
		return err
	}
	for _, c := range addedColumns {
		if have[c.name] {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`ALTER TABLE export_requests ADD COLUMN `+c.name+` `+c.def)); err != nil {
			return fmt.Errorf("txstore: add column %s: %w", c.name, err)
		}
	}
	for _, stmt := range afterColumns {
		if _, err := tx.ExecContext(ctx, s.d.q(stmt)); err != nil {
			return fmt.Errorf("txstore: create schema: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("txstore: create schema: %w", err)
	}
	return nil
}
