package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// DefaultInboxRetention is how long Idempotent keeps the record of a
// handled message by default.
const DefaultInboxRetention = 24 * time.Hour

// TxHandler handles a message inside a database transaction that
// Idempotent begins and commits. It must not commit or roll back tx.
type TxHandler func(ctx context.Context, tx *sql.Tx, msg *pubsub.Message) error

// InboxOption configures Idempotent and PurgeInbox.
type InboxOption func(*inboxConfig)

type inboxConfig struct {
	dialect   Dialect
	table     string
	retention time.Duration
	observer  Observer
	logger    *slog.Logger
}

// WithInboxTable sets the inbox table (see Migrate). Default
// DefaultInboxTable ("switchyard_inbox").
func WithInboxTable(name string) InboxOption { return func(c *inboxConfig) { c.table = name } }

// WithInboxDialect sets the database's dialect. Default: detected from
// the driver, as for Config.Dialect.
func WithInboxDialect(d Dialect) InboxOption { return func(c *inboxConfig) { c.dialect = d } }

// WithInboxRetention sets how long a handled message's record is kept: a
// redelivery of the message after that runs the handler again, so it must
// outlast the longest time a duplicate can take to arrive (the broker's
// redelivery, an outbox relay publishing again after a crash). Default
// DefaultInboxRetention (24h); it must be positive. Idempotent deletes
// older records in the background, at most every tenth of it (and at
// least every 10 minutes).
func WithInboxRetention(d time.Duration) InboxOption {
	return func(c *inboxConfig) { c.retention = d }
}

// WithInboxObserver sets the observer told of duplicates
// (Observer.OnDuplicate).
func WithInboxObserver(o Observer) InboxOption { return func(c *inboxConfig) { c.observer = o } }

// WithInboxLogger sets the logger of failures to delete old records
// (Error). Default slog.Default().
func WithInboxLogger(l *slog.Logger) InboxOption { return func(c *inboxConfig) { c.logger = l } }

func newInboxConfig(db *sql.DB, opts []InboxOption) (inboxConfig, tables, error) {
	c := inboxConfig{table: DefaultInboxTable, retention: DefaultInboxRetention, logger: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	var errs []error
	if db == nil {
		errs = append(errs, fmt.Errorf("outbox: %w: nil *sql.DB", pubsub.ErrInvalidOption))
	} else if c.dialect.impl == nil {
		d, err := detect(db)
		c.dialect = d
		errs = append(errs, err)
	}
	if c.retention <= 0 {
		errs = append(errs, fmt.Errorf("outbox: %w: inbox retention %v, want > 0", pubsub.ErrInvalidOption, c.retention))
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	t, err := newTables(DefaultTable, c.table)
	errs = append(errs, err)
	return c, t, errors.Join(errs...)
}

// Idempotent returns a pubsub.Handler that runs h at most once per
// message ID for group, as an inbox: for each delivery it begins a
// transaction on db, records (group, message ID) in the inbox table, runs
// h in that transaction and commits. A delivery whose ID group recorded
// already is acknowledged without running h (Observer.OnDuplicate), so
// redeliveries and duplicate publishes have their effects once, as long
// as h writes its effects through tx. If h returns an error or panics, or
// the commit fails, the transaction rolls back, the record with it, and
// the error goes to the delivery loop to be retried or dead-lettered as
// usual (a pubsub.Permanent error is returned as it is).
//
// group names the consumer whose handling is deduplicated (normally the
// consumer group); the same ID under two groups runs twice. Two deliveries
// of one ID at once (a redelivery while the first still runs) are
// serialized by the record's primary key: the second waits for the first
// transaction and is then skipped, or runs if the first rolled back. On
// SQLite every handler holds the database's one write lock from its
// record to its commit.
//
// Records of group are deleted after WithInboxRetention (24h by default),
// in the background. The table must exist (Migrate). A message without an ID is
// dead-lettered with a Permanent error (Switchyard's brokers always give
// one). Idempotent panics when db or h is nil, group is empty, or an
// option is invalid (the dialect cannot be detected, a bad table name).
func Idempotent(db *sql.DB, group string, h TxHandler, opts ...InboxOption) pubsub.Handler {
	c, t, err := newInboxConfig(db, opts)
	if h == nil {
		err = errors.Join(err, fmt.Errorf("outbox: %w: nil handler", pubsub.ErrInvalidOption))
	}
	if group == "" {
		err = errors.Join(err, fmt.Errorf("outbox: %w: empty group", pubsub.ErrInvalidOption))
	}
	if err != nil {
		panic(err)
	}
	in := &inbox{db: db, group: group, h: h, c: c, d: c.dialect.impl, t: t}
	in.lastCleanup.Store(time.Now().UnixNano())
	return in.handle
}

type inbox struct {
	db    *sql.DB
	group string
	h     TxHandler
	c     inboxConfig
	d     dialect
	t     tables

	lastCleanup atomic.Int64 // UnixNano
	cleaning    atomic.Bool
}

func (in *inbox) handle(ctx context.Context, msg *pubsub.Message) error {
	if msg.ID == "" {
		return pubsub.Permanent(fmt.Errorf("outbox: inbox %s: a message without an ID cannot be deduplicated", in.group))
	}
	tx, err := in.db.BeginTx(ctx, nil)
	if err != nil {
		return in.err(ctx, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	fresh, err := in.d.record(ctx, tx, in.t, in.group, msg.ID)
	if err != nil {
		return in.err(ctx, "record message", err)
	}
	if !fresh {
		_ = tx.Rollback()
		if f := in.c.observer.OnDuplicate; f != nil {
			f(ctx, in.group, msg)
		}
		return nil
	}
	if err := in.h(ctx, tx, msg); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return in.err(ctx, "commit", err)
	}
	in.maybeCleanup()
	return nil
}

func (in *inbox) err(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	return fmt.Errorf("outbox: inbox %s: %s: %w", in.group, what, err)
}

// maybeCleanup starts deleting expired records in the background, unless
// that was done less than an interval ago or is running.
func (in *inbox) maybeCleanup() {
	every := min(max(in.c.retention/10, 100*time.Millisecond), 10*time.Minute)
	now := time.Now()
	if now.UnixNano()-in.lastCleanup.Load() < int64(every) || !in.cleaning.CompareAndSwap(false, true) {
		return
	}
	in.lastCleanup.Store(now.UnixNano())
	go func() {
		defer in.cleaning.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := purge(ctx, in.db, in.d, in.t, in.group, now.Add(-in.c.retention)); err != nil {
			in.c.logger.Error("outbox: delete old inbox records", "table", in.t.inbox, "err", err)
		}
	}()
}

// PurgeInbox deletes the inbox records of group received before before and
// returns how many it deleted. Idempotent does this by itself with its
// retention; PurgeInbox is for tools and tests. It takes WithInboxTable and
// WithInboxDialect, and blocks until done.
func PurgeInbox(ctx context.Context, db *sql.DB, group string, before time.Time, opts ...InboxOption) (int64, error) {
	c, t, err := newInboxConfig(db, opts)
	if err != nil {
		return 0, err
	}
	return purge(ctx, db, c.dialect.impl, t, group, before)
}

func purge(ctx context.Context, db *sql.DB, d dialect, t tables, group string, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := d.purgeInbox(ctx, db, t, group, before, cleanupChunk)
		total += n
		if err != nil {
			return total, fmt.Errorf("outbox: delete old inbox records: %w", err)
		}
		if n < cleanupChunk {
			return total, nil
		}
	}
}
