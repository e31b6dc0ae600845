package txstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned for an export request that does not exist.
var ErrNotFound = errors.New("txstore: not found")

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	d  dialect
}

// Open connects to the database that databaseURL names (see the package
// doc), creates the tables if they do not exist, and returns the Store. The
// caller must Close it.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	driver, dsn, d, err := parseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("txstore: open %s: %w", d.name, err)
	}
	s := &Store{db: db, d: d}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// DB returns the underlying database, for tests and tools.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func parseURL(raw string) (driver, dsn string, d dialect, err error) {
	if raw == "" {
		return "", "", dialect{}, errors.New("txstore: empty database URL")
	}
	lower := strings.ToLower(raw)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		return "pgx", raw, postgres, nil
	}
	path := raw
	switch {
	case strings.HasPrefix(lower, "sqlite://"):
		u, perr := url.Parse(raw)
		if perr != nil {
			return "", "", dialect{}, fmt.Errorf("txstore: database URL does not parse: %w", perr)
		}
		path = u.Host + u.Path
	case strings.HasPrefix(lower, "sqlite:"):
		path = raw[len("sqlite:"):]
	case strings.HasPrefix(lower, "file:"):
		path = raw[len("file:"):]
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" || strings.Contains(path, "://") {
		return "", "", dialect{}, fmt.Errorf("txstore: database URL %q: want postgres://... or a SQLite file (sqlite:PATH)", raw)
	}
	// WAL lets exporters read a cursor while others write progress;
	// busy_timeout makes concurrent writers (several processes) wait, not fail.
	dsn = "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	return "sqlite", dsn, sqlite, nil
}
