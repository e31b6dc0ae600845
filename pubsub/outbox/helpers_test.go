package outbox_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // "sqlite" driver

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// defaultPostgresURL is the PostgreSQL that tests use when
// SWITCHYARD_POSTGRES_URL is not set.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// postgresURL returns the URL of the test PostgreSQL with its search_path
// set to a new schema that is dropped when t ends. It skips t when
// PostgreSQL is unreachable (fails it under CI=true).
func postgresURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("SWITCHYARD_POSTGRES_URL")
	if raw == "" {
		raw = defaultPostgresURL
	}
	u, err := url.Parse(raw)
	require.NoError(t, err, "SWITCHYARD_POSTGRES_URL does not parse")
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	brokertest.Reachable(t, host, "PostgreSQL", "start PostgreSQL or set SWITCHYARD_POSTGRES_URL")
	admin, err := sql.Open("pgx", raw)
	require.NoError(t, err)
	defer admin.Close()
	schema := "outbox_test_" + pubsub.NewID()[:12]
	_, err = admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", raw)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openPostgres opens a pool on url (as another process would), closed
// when t ends.
func openPostgres(t testing.TB, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	db.SetMaxOpenConns(12)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// sqliteURL returns a new SQLite file in t's temporary directory.
func sqliteURL(t testing.TB) string {
	return filepath.Join(t.TempDir(), "outbox.db")
}

// openSQLite opens the SQLite file path in WAL mode with a busy timeout,
// as the package documentation says.
func openSQLite(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	require.NoError(t, err)
	db.SetMaxOpenConns(8)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// database is one database under test: open returns a new pool on it, as
// another process would have.
type database struct {
	name string
	open func(t testing.TB) *sql.DB
	// url is, once opened, the PostgreSQL URL with the test's search_path
	// or the SQLite file's path.
	url string
}

// openNamed returns a new pool whose PostgreSQL sessions carry the
// application_name app, so that a test can kill them (see kill).
func (d *database) openNamed(t testing.TB, app string) *sql.DB {
	db := d.open(t)
	if d.name != "postgres" {
		return db
	}
	_ = db.Close()
	return openPostgres(t, d.url+"&application_name="+app)
}

// databases returns PostgreSQL (a schema of its own) and SQLite (a file of
// its own) for t.
func databases(t *testing.T) []*database {
	pg := &database{name: "postgres"}
	var once sync.Once
	pg.open = func(tb testing.TB) *sql.DB {
		once.Do(func() { pg.url = postgresURL(tb) })
		return openPostgres(tb, pg.url)
	}
	lite := &database{name: "sqlite"}
	var liteOnce sync.Once
	lite.open = func(tb testing.TB) *sql.DB {
		liteOnce.Do(func() { lite.url = sqliteURL(tb) })
		return openSQLite(tb, lite.url)
	}
	return []*database{pg, lite}
}

// forEachDB runs f as a subtest on each database, with the tables made.
func forEachDB(t *testing.T, f func(t *testing.T, d *database, db *sql.DB)) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			require.NoError(t, outbox.Migrate(context.Background(), db, outbox.Config{}))
			f(t, d, db)
		})
	}
}

// newBroker returns an in-process broker of its own.
func newBroker(t testing.TB, cfg memory.Config) *pubsub.Client {
	t.Helper()
	b, err := memory.New(cfg, pubsub.WithLogger(nil))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// quiet is a logger that discards.
var quiet = slog.New(slog.DiscardHandler)

// newOutbox returns an Outbox on db publishing through pub, with cfg's
// other fields.
func newOutbox(t testing.TB, db *sql.DB, pub pubsub.Publisher, cfg outbox.Config) *outbox.Outbox {
	t.Helper()
	cfg.Publisher = pub
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	ob, err := outbox.New(db, cfg)
	require.NoError(t, err)
	return ob
}

// startRelay runs ob.Run until the returned stop is called (or t ends);
// stop waits for Run to return and returns its error.
func startRelay(t testing.TB, ob *outbox.Outbox) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// store publishes msgs to topic through ob in one transaction on db and
// commits it.
func store(t testing.TB, db *sql.DB, ob *outbox.Outbox, topic string, msgs ...*pubsub.Message) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, ob.Publish(ctx, tx, topic, msgs...))
	require.NoError(t, tx.Commit())
}

// collector records what a subscription receives.
type collector struct {
	mu      sync.Mutex
	msgs    []*pubsub.Message
	byID    map[string]int // deliveries per ID
	changed chan struct{}  // signalled after each delivery
}

// collect subscribes a collector to topic as group on b (concurrency n).
func collect(t testing.TB, b pubsub.Subscriber, topic, group string, n int) *collector {
	t.Helper()
	c := &collector{byID: map[string]int{}, changed: make(chan struct{}, 1)}
	sub, err := b.Subscribe(context.Background(), topic, group, func(_ context.Context, m *pubsub.Message) error {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.byID[m.ID]++
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
		return nil
	}, pubsub.WithConcurrency(n))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return c
}

// waitUnique waits until the collector has n distinct IDs, failing t after
// timeout.
func (c *collector) waitUnique(t testing.TB, n int, timeout time.Duration, diag ...func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if got := c.unique(); got >= n {
			return
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			for _, d := range diag {
				t.Log(d())
			}
			t.Fatalf("received %d distinct messages, want %d within %v", c.unique(), n, timeout)
		}
	}
}

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// snapshot returns the messages received so far, in arrival order.
func (c *collector) snapshot() []*pubsub.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*pubsub.Message(nil), c.msgs...)
}

// duplicates is how many deliveries were of an ID received before.
func (c *collector) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs) - len(c.byID)
}

// firstSeen returns, per key, the IDs in the order of their first arrival.
func firstSeen(msgs []*pubsub.Message) map[string][]string {
	seen := map[string]bool{}
	out := map[string][]string{}
	for _, m := range msgs {
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		out[m.Key] = append(out[m.Key], m.ID)
	}
	return out
}

// topicName returns a topic name of the test's own.
func topicName(t testing.TB) string {
	n := []byte(t.Name())
	for i, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		case c == '/':
			n[i] = '.'
		default:
			n[i] = '_'
		}
	}
	return string(n[:min(len(n), 150)])
}

// logRecorder is a slog.Handler that keeps the records at Warn and above.
type logRecorder struct {
	mu      sync.Mutex
	records []string
}

func (l *logRecorder) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, line)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.records...)
}
