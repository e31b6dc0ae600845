package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Migrate creates the outbox and inbox tables of cfg (cfg.Table and
// cfg.InboxTable, in cfg.Dialect or the one detected from db) and their
// indexes, if they do not exist; the other fields of cfg are ignored. It
// runs in one transaction; on PostgreSQL an advisory lock keeps processes
// that start at once from racing. The statements are those of Schema, for
// applications that run their own migrations.
func Migrate(ctx context.Context, db *sql.DB, cfg Config) error {
	if cfg.Dialect.impl == nil && db != nil {
		d, err := detect(db)
		if err != nil {
			return err
		}
		cfg.Dialect = d
	}
	stmts, err := Schema(cfg)
	if err != nil {
		return err
	}
	if db == nil {
		return fmt.Errorf("outbox: %w: nil *sql.DB", pubsub.ErrInvalidOption)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if cfg.Dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, int32(hash64("switchyard.outbox.migrate"))); err != nil {
			return fmt.Errorf("outbox: migrate: lock: %w", err)
		}
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("outbox: migrate: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: migrate: %w", err)
	}
	return nil
}

// Schema returns the SQL statements that create the tables of cfg
// (cfg.Table and cfg.InboxTable, defaults applied) in cfg.Dialect, which
// must be set. They are idempotent (CREATE ... IF NOT EXISTS).
func Schema(cfg Config) ([]string, error) {
	if cfg.Dialect.impl == nil {
		return nil, fmt.Errorf("outbox: %w: Schema needs Config.Dialect", pubsub.ErrInvalidOption)
	}
	cfg.setDefaults()
	t, err := newTables(cfg.Table, cfg.InboxTable)
	if err != nil {
		return nil, errors.Join(err)
	}
	return cfg.Dialect.impl.schema(t), nil
}
