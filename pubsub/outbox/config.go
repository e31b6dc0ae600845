package outbox

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Defaults of Config.
const (
	DefaultTable          = "switchyard_outbox"
	DefaultInboxTable     = "switchyard_inbox"
	DefaultBatchSize      = 200
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultLease          = 30 * time.Second
	DefaultPublishTimeout = 10 * time.Second
	DefaultBackoff        = 100 * time.Millisecond
	DefaultMaxBackoff     = 2 * time.Second
	DefaultRetention      = time.Hour
	DefaultStatsInterval  = 10 * time.Second
	// MaxBatchSize is the largest Config.BatchSize.
	MaxBatchSize = 10_000
)

// NoRetention, as Config.Retention, deletes rows as soon as they are
// published instead of keeping them.
const NoRetention time.Duration = -1

// Config configures an Outbox. The zero value of each field means its
// default; New validates every field at once.
type Config struct {
	// Dialect is the database's SQL dialect. Default: detected from the
	// driver of the *sql.DB (pgx's or lib/pq's stdlib driver: Postgres;
	// modernc.org/sqlite or mattn/go-sqlite3: SQLite).
	Dialect Dialect
	// Table is the outbox table, optionally schema-qualified on PostgreSQL
	// ("app.outbox"). Default DefaultTable ("switchyard_outbox").
	Table string
	// InboxTable is the table of Idempotent's records that Migrate creates.
	// Default DefaultInboxTable ("switchyard_inbox").
	InboxTable string

	// Publisher is what Run publishes through: any pubsub.Publisher, such as
	// the *pubsub.Client of any transport. Only Run needs it: a process
	// that only stores messages may leave it nil.
	Publisher pubsub.Publisher
	// BatchSize is how many rows a relay claims and publishes at once, at
	// most MaxBatchSize. Default DefaultBatchSize (200).
	BatchSize int
	// PollInterval is how long an idle relay waits before it looks for rows
	// stored by other processes (rows stored through this Outbox wake its
	// relays at once). Default DefaultPollInterval (500ms).
	PollInterval time.Duration
	// Lease is how long a relay may hold claimed rows without a word to
	// the database before they go to other relays: on PostgreSQL the
	// claiming transaction's idle_in_transaction_session_timeout, on
	// SQLite the lease written on the rows. It bounds how long rows of a
	// relay that hangs stay unpublished, and must be longer than
	// PublishTimeout. Default DefaultLease (30s).
	Lease time.Duration
	// PublishTimeout bounds each Publish of a relay; a Publish that takes
	// longer fails and its messages are published again later. Default
	// DefaultPublishTimeout (10s); it must be shorter than Lease.
	PublishTimeout time.Duration
	// Backoff is how long a relay waits after a failed Publish or database
	// error, doubling (with jitter) after each further failure up to
	// MaxBackoff. Defaults DefaultBackoff (100ms) and DefaultMaxBackoff
	// (2s).
	Backoff, MaxBackoff time.Duration
	// Retention is how long published rows stay in the table (for
	// inspection) before relays delete them. Default DefaultRetention
	// (1h); NoRetention deletes rows as soon as they are published.
	// Rows that were rejected for good stay until deleted by hand (see the
	// package documentation).
	Retention time.Duration
	// StatsInterval is how often a relay counts the pending rows for
	// Observer.OnPending (only when it is set). Default
	// DefaultStatsInterval (10s).
	StatsInterval time.Duration

	// StoreMiddleware wraps the storing of messages (Publish, and Tx's
	// Publish) as publish middleware (pubsub.WithPublishMiddleware) wraps a
	// broker's Publish: each gets the caller's context, the topic and the
	// messages before they are stored, the first outermost. Give
	// otelpubsub.PublishMiddleware() here to start a send span in the
	// caller's trace and write its context into the stored messages'
	// metadata, so that the relay's publish, later, continues that trace.
	// Default none.
	StoreMiddleware []func(next pubsub.PublishFunc) pubsub.PublishFunc

	// Observer is told what the relays do; see Observer.
	Observer Observer
	// Logger logs relay failures (Warn), rejected messages (Error) and
	// database errors (Error). Default slog.Default(); use
	// slog.New(slog.DiscardHandler) for none.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.InboxTable == "" {
		c.InboxTable = DefaultInboxTable
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = min(DefaultPublishTimeout, c.Lease/2)
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.Backoff)
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate reports every problem at once, each wrapping
// pubsub.ErrInvalidOption.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("outbox: %w: "+format, append([]any{pubsub.ErrInvalidOption}, args...)...))
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("BatchSize %d, want 1..%d", c.BatchSize, MaxBatchSize)
	}
	if c.PollInterval < 0 {
		bad("PollInterval %v, want > 0", c.PollInterval)
	}
	if c.Lease < 0 {
		bad("Lease %v, want > 0", c.Lease)
	}
	if c.PublishTimeout <= 0 || c.PublishTimeout >= c.Lease {
		bad("PublishTimeout %v, want > 0 and shorter than Lease (%v)", c.PublishTimeout, c.Lease)
	}
	if c.Backoff < 0 || c.MaxBackoff < c.Backoff {
		bad("Backoff %v..%v, want 0 < Backoff <= MaxBackoff", c.Backoff, c.MaxBackoff)
	}
	if c.Retention < 0 && c.Retention != NoRetention {
		bad("Retention %v, want > 0 or NoRetention", c.Retention)
	}
	if c.StatsInterval < 0 {
		bad("StatsInterval %v, want > 0", c.StatsInterval)
	}
	return errors.Join(errs...)
}

// cleanupInterval is how often a relay deletes rows past Retention.
func (c *Config) cleanupInterval() time.Duration {
	return min(max(c.Retention/10, 100*time.Millisecond), 10*time.Minute)
}
