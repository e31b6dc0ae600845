package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// sqlite is the SQLite dialect.
//
// SQLite has one writer at a time, so rowids are drawn in commit order and
// each statement runs alone. A relay claims rows with one UPDATE ...
// RETURNING that writes a lease (owner token and expiry) on the oldest
// unleased pending rows whose key has no earlier row leased by another
// relay; it publishes with no transaction open, then marks the rows in a
// short transaction. A relay that dies leaves its rows leased until the
// lease expires. Times are Unix microseconds.
type sqlite struct{}

func (sqlite) name() string { return "sqlite" }

func (sqlite) schema(t tables) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + t.outbox + ` (
	id          INTEGER PRIMARY KEY,
	topic       TEXT NOT NULL,
	msg_key     TEXT NOT NULL,
	msg_id      TEXT NOT NULL,
	metadata    TEXT NOT NULL,
	payload     BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	sent_at     INTEGER,
	failed_at   INTEGER,
	error       TEXT,
	lease_owner TEXT,
	lease_until INTEGER
)`,
		`CREATE INDEX IF NOT EXISTS ` + index(t.outbox, "pending") + ` ON ` + t.outbox + ` (id)
	WHERE sent_at IS NULL AND failed_at IS NULL`,
		`CREATE INDEX IF NOT EXISTS ` + index(t.outbox, "key") + ` ON ` + t.outbox + ` (topic, msg_key, id)
	WHERE sent_at IS NULL AND failed_at IS NULL AND msg_key <> ''`,
		`CREATE INDEX IF NOT EXISTS ` + index(t.outbox, "sent") + ` ON ` + t.outbox + ` (sent_at)
	WHERE sent_at IS NOT NULL`,
		`CREATE TABLE IF NOT EXISTS ` + t.inbox + ` (
	grp         TEXT NOT NULL,
	msg_id      TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	PRIMARY KEY (grp, msg_id)
)`,
		`CREATE INDEX IF NOT EXISTS ` + index(t.inbox, "received") + ` ON ` + t.inbox + ` (grp, received_at)`,
	}
}

// sqliteInsertChunk is how many rows one INSERT statement carries at most.
const sqliteInsertChunk = 500

func micros(t time.Time) int64 { return t.UnixMicro() }

func (sqlite) insert(ctx context.Context, tx *sql.Tx, t tables, topic string, rows []encoded) error {
	now := micros(time.Now())
	for len(rows) > 0 {
		n := min(len(rows), sqliteInsertChunk)
		var q strings.Builder
		q.WriteString(`INSERT INTO ` + t.outbox + ` (topic, msg_key, msg_id, metadata, payload, created_at) VALUES `)
		args := make([]any, 0, 2+4*n)
		args = append(args, topic, now)
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			p := 3 + 4*i
			fmt.Fprintf(&q, "(?1,?%d,?%d,?%d,?%d,?2)", p, p+1, p+2, p+3)
			args = append(args, r.key, r.id, r.metadata, r.payload)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("outbox: store messages: %w", err)
		}
		rows = rows[n:]
	}
	return nil
}

func (sqlite) anyClaimable(ctx context.Context, db *sql.DB, t tables) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.outbox+`
	WHERE sent_at IS NULL AND failed_at IS NULL AND (lease_until IS NULL OR lease_until <= ?))`, micros(time.Now())).Scan(&ok)
	return ok, err
}

func (sqlite) claim(ctx context.Context, db *sql.DB, t tables, limit int, lease time.Duration) (batch, error) {
	now := time.Now()
	owner := pubsub.NewID()
	rs, err := db.QueryContext(ctx, `UPDATE `+t.outbox+` SET lease_owner = ?1, lease_until = ?2
WHERE id IN (
	SELECT o.id FROM `+t.outbox+` o
	WHERE o.sent_at IS NULL AND o.failed_at IS NULL AND (o.lease_until IS NULL OR o.lease_until <= ?3)
		AND NOT (o.msg_key <> '' AND EXISTS (SELECT 1 FROM `+t.outbox+` p
			WHERE p.topic = o.topic AND p.msg_key = o.msg_key AND p.msg_key <> '' AND p.id < o.id
				AND p.sent_at IS NULL AND p.failed_at IS NULL AND p.lease_until > ?3))
	ORDER BY o.id LIMIT ?4)
RETURNING id, topic, msg_key, msg_id, metadata, payload, created_at`,
		owner, micros(now.Add(lease)), micros(now), limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	b := &sqliteBatch{db: db, t: t, owner: owner}
	for rs.Next() {
		var (
			r             row
			key, id, meta string
			payload       []byte
			created       int64
		)
		if err := rs.Scan(&r.id, &r.topic, &key, &id, &meta, &payload, &created); err != nil {
			return nil, b.scanFailed(err)
		}
		b.n++
		b.ids = append(b.ids, r.id)
		r.age, r.claimed = now.Sub(time.UnixMicro(created)), now
		if r.msg, err = decode(id, key, meta, payload); err != nil {
			b.bad = append(b.bad, rejection{id: r.id, err: err.Error()})
			continue
		}
		b.rs = append(b.rs, r)
	}
	if err := rs.Err(); err != nil {
		return nil, b.scanFailed(err)
	}
	// RETURNING gives no order.
	sortRows(b.rs)
	return b, nil
}

// sqliteBatch is a lease on rows.
type sqliteBatch struct {
	db    *sql.DB
	t     tables
	owner string
	ids   []int64 // every row claimed
	rs    []row
	bad   []rejection
	n     int
}

func (b *sqliteBatch) scanFailed(err error) error {
	b.abandon()
	return err
}

func (b *sqliteBatch) rows() []row              { return b.rs }
func (b *sqliteBatch) claimed() int             { return b.n }
func (b *sqliteBatch) undecodable() []rejection { return b.bad }

func (b *sqliteBatch) finish(ctx context.Context, sent []int64, rejected []rejection, deleteSent bool) error {
	now := micros(time.Now())
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if len(sent) > 0 {
		ids, _ := json.Marshal(sent)
		if deleteSent {
			_, err = tx.ExecContext(ctx, `DELETE FROM `+b.t.outbox+` WHERE id IN (SELECT value FROM json_each(?))`, string(ids))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE `+b.t.outbox+` SET sent_at = ?, lease_owner = NULL, lease_until = NULL
	WHERE id IN (SELECT value FROM json_each(?))`, now, string(ids))
		}
		if err != nil {
			return err
		}
	}
	for _, r := range rejected {
		if _, err := tx.ExecContext(ctx, `UPDATE `+b.t.outbox+` SET failed_at = ?, error = ?, lease_owner = NULL, lease_until = NULL
	WHERE id = ?`, now, r.err, r.id); err != nil {
			return err
		}
	}
	if err := b.release(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// abandon gives the lease back at once, if the database answers within a
// second, so that a relay that stops cleanly does not hold rows until
// their lease expires.
func (b *sqliteBatch) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if b.release(ctx, tx) == nil {
		_ = tx.Commit()
	}
}

// release gives back the lease on the claimed rows that still have it
// (those neither marked nor taken over since).
func (b *sqliteBatch) release(ctx context.Context, tx *sql.Tx) error {
	if len(b.ids) == 0 {
		return nil
	}
	ids, _ := json.Marshal(b.ids)
	_, err := tx.ExecContext(ctx, `UPDATE `+b.t.outbox+` SET lease_owner = NULL, lease_until = NULL
	WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ?`, string(ids), b.owner)
	return err
}

func (sqlite) pending(ctx context.Context, db *sql.DB, t tables) (Pending, error) {
	var (
		p      Pending
		oldest sql.NullInt64
	)
	err := db.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM `+t.outbox+`
	WHERE sent_at IS NULL AND failed_at IS NULL`).Scan(&p.Rows, &oldest)
	if oldest.Valid {
		p.OldestAge = time.Since(time.UnixMicro(oldest.Int64))
	}
	return p, err
}

func (sqlite) cleanup(ctx context.Context, db *sql.DB, t tables, cutoff time.Time, limit int) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM `+t.outbox+` WHERE id IN (
	SELECT id FROM `+t.outbox+` WHERE sent_at < ? LIMIT ?)`, micros(cutoff), limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (sqlite) record(ctx context.Context, tx *sql.Tx, t tables, group, id string) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO `+t.inbox+` (grp, msg_id, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		group, id, micros(time.Now()))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (sqlite) purgeInbox(ctx context.Context, db *sql.DB, t tables, group string, cutoff time.Time, limit int) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM `+t.inbox+` WHERE rowid IN (
	SELECT rowid FROM `+t.inbox+` WHERE grp = ? AND received_at < ? LIMIT ?)`, group, micros(cutoff), limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
