// Package testdb gives tests of the examples a database URL: a SQLite file
// in the test's temporary directory, or a fresh schema on the test
// PostgreSQL.
package testdb

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
)

// DefaultPostgresURL is the PostgreSQL that tests use when
// SWITCHYARD_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// SQLite returns the URL of a new SQLite database file in t's temporary
// directory.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "transactions.db")
}

// Postgres returns the URL of the test PostgreSQL (SWITCHYARD_POSTGRES_URL,
// default DefaultPostgresURL) with its search_path set to a new schema that
// is dropped when t ends. If PostgreSQL is unreachable it skips t, or fails
// it under CI=true.
func Postgres(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("SWITCHYARD_POSTGRES_URL")
	if raw == "" {
		raw = DefaultPostgresURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("SWITCHYARD_POSTGRES_URL does not parse: %v", err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	brokertest.Reachable(t, host, "PostgreSQL", "start PostgreSQL or set SWITCHYARD_POSTGRES_URL")

	db, err := sql.Open("pgx", raw)
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	defer db.Close()
	schema := "sy_test_" + pubsub.NewID()[:12]
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", raw)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
