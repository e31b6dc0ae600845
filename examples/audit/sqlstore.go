package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// SQLStore is a Store in a SQL database (PostgreSQL, or SQLite), table
// audit_records. With it the service deduplicates deliveries through the
// inbox of package pubsub/outbox (outbox.Idempotent): a record and the
// inbox's note that its message was handled commit together, so a
// redelivered or republished message is recorded once, across restarts.
// It is safe for concurrent use.
type SQLStore struct {
	db *sql.DB
	pg bool
}

// NewSQLStore creates the audit_records table in db if it does not exist
// and returns the store.
func NewSQLStore(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := &SQLStore{db: db, pg: strings.Contains(t.PkgPath(), "pgx") || t.PkgPath() == "github.com/lib/pq"}
	id := "id INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.pg {
		id = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS audit_records (
			` + id + `,
			message_id  TEXT NOT NULL UNIQUE,
			user_id     TEXT NOT NULL,
			event       TEXT NOT NULL,
			received_at TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS audit_records_user ON audit_records (user_id, id)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("audit: create table: %w", err)
		}
	}
	return s, nil
}

func (s *SQLStore) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Append implements Store: one record per MessageID.
func (s *SQLStore) Append(ctx context.Context, r Record) (bool, error) {
	return s.insert(ctx, s.db, r)
}

// AppendTx adds r in tx (an inbox transaction) and reports whether it
// added it.
func (s *SQLStore) AppendTx(ctx context.Context, tx *sql.Tx, r Record) (bool, error) {
	return s.insert(ctx, tx, r)
}

func (s *SQLStore) insert(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, r Record) (bool, error) {
	ev, err := json.Marshal(r.Event)
	if err != nil {
		return false, fmt.Errorf("audit: encode event: %w", err)
	}
	res, err := q.ExecContext(ctx, s.q(`INSERT INTO audit_records (message_id, user_id, event, received_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (message_id) DO NOTHING`), r.MessageID, r.Event.UserID, string(ev), r.ReceivedAt.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return false, fmt.Errorf("audit: append: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// List implements Store.
func (s *SQLStore) List(ctx context.Context, userID string, limit int) ([]Record, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT message_id, event, received_at FROM audit_records
		WHERE ? = '' OR user_id = ? ORDER BY id DESC LIMIT ?`), userID, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		var r Record
		var ev, at string
		if err := rows.Scan(&r.MessageID, &ev, &at); err != nil {
			return nil, fmt.Errorf("audit: list: %w", err)
		}
		if err := json.Unmarshal([]byte(ev), &r.Event); err != nil {
			return nil, fmt.Errorf("audit: decode event: %w", err)
		}
		r.ReceivedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
