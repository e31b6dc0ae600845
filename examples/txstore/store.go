package txstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

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
// doc), creates the tables if they do not exist (under a lock: processes
// starting together on one database migrate it once; a SQLite file locked
// by another process starting is waited for, up to 30s), and returns the
// Store. The
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
	if err := s.migrateRetrying(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openTimeout bounds how long Open waits for a busy SQLite database.
const openTimeout = 30 * time.Second

// migrateRetrying migrates, waiting out a SQLite database that another
// process holds locked while it starts (switching a new file to WAL, its
// own migration) with backoff, up to openTimeout.
func (s *Store) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(openTimeout)
	wait := 20 * time.Millisecond
	for {
		err := s.migrate(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait/2 + rand.N(wait)):
		}
		wait = min(2*wait, time.Second)
	}
}

// isUniqueViolation reports whether err is a unique constraint violation
// (PostgreSQL's 23505, SQLite's SQLITE_CONSTRAINT_UNIQUE).
func isUniqueViolation(err error) bool {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		return pg.SQLState() == "23505"
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code() == 2067 || coded.Code() == 1555
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (or SQLITE_LOCKED).
func isBusy(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		c := coded.Code() & 0xff
		return c == 5 || c == 6
	}
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}

// OpenDB opens the database that databaseURL names (see the package doc)
// with Open's connection settings (on SQLite: WAL, a busy timeout,
// immediate transactions), without creating any table: for a service's
// own tables, such as audit's trail. The caller must Close it.
func OpenDB(databaseURL string) (*sql.DB, error) {
	driver, dsn, d, err := parseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("txstore: open %s: %w", d.name, err)
	}
	return db, nil
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
