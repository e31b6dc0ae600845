package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// postgres is the PostgreSQL dialect.
//
// Ordering: Publish takes a transaction-scoped advisory lock per ordering
// key (pg_advisory_xact_lock) before it draws the rows' ids, so two
// transactions that publish to one key are serialized from the first
// Publish to commit: the later one draws its ids only after the earlier
// committed (or rolled back). Hence, per key, id order is commit order and
// a committed row never has a lower id than a row of its key that commits
// after it (the identity sequence must keep CACHE 1, its default).
//
// Relays claim the oldest pending rows with FOR UPDATE SKIP LOCKED in a
// transaction that they hold while they publish, and mark the rows in it
// before commit. A row whose key has an earlier pending row that is not in
// the claim (so another relay holds it) is left alone. The transaction's
// idle_in_transaction_session_timeout is the lease: a relay that stops
// answering loses its connection, and its rows go to the others.
type postgres struct{}

func (postgres) name() string { return "postgres" }

func (postgres) schema(t tables) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + t.outbox + ` (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	topic      TEXT NOT NULL,
	msg_key    TEXT NOT NULL,
	msg_id     TEXT NOT NULL,
	metadata   TEXT NOT NULL,
	payload    BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
	sent_at    TIMESTAMPTZ,
	failed_at  TIMESTAMPTZ,
	error      TEXT
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
	received_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (grp, msg_id)
)`,
		`CREATE INDEX IF NOT EXISTS ` + index(t.inbox, "received") + ` ON ` + t.inbox + ` (received_at)`,
	}
}

// pgInsertChunk is how many rows one INSERT statement carries at most (5
// parameters each, under PostgreSQL's 65,535).
const pgInsertChunk = 1000

func (postgres) insert(ctx context.Context, tx *sql.Tx, t tables, topic string, rows []encoded) error {
	var locks []int32
	for _, r := range rows {
		if r.key != "" {
			locks = append(locks, keyLock(topic, r.key))
		}
	}
	// Sorted, so that two Publish calls with the same keys cannot deadlock.
	slices.Sort(locks)
	locks = slices.Compact(locks)
	switch len(locks) {
	case 0:
	case 1:
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, t.lockClass, locks[0]); err != nil {
			return fmt.Errorf("outbox: lock ordering key: %w", err)
		}
	default:
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k`, t.lockClass, intArray(locks)); err != nil {
			return fmt.Errorf("outbox: lock ordering keys: %w", err)
		}
	}
	for len(rows) > 0 {
		n := min(len(rows), pgInsertChunk)
		var q strings.Builder
		q.WriteString(`INSERT INTO ` + t.outbox + ` (topic, msg_key, msg_id, metadata, payload) VALUES `)
		args := make([]any, 0, 1+4*n)
		args = append(args, topic)
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			p := 2 + 4*i
			fmt.Fprintf(&q, "($1,$%d,$%d,$%d,$%d)", p, p+1, p+2, p+3)
			args = append(args, r.key, r.id, r.metadata, r.payload)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("outbox: store messages: %w", err)
		}
		rows = rows[n:]
	}
	return nil
}

func (postgres) anyClaimable(ctx context.Context, db *sql.DB, t tables) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.outbox+` WHERE sent_at IS NULL AND failed_at IS NULL)`).Scan(&ok)
	return ok, err
}

func (postgres) claim(ctx context.Context, db *sql.DB, t tables, limit int, lease time.Duration) (batch, error) {
	// The transaction outlives ctx, so that a relay that stops can still
	// mark what it published.
	tx, err := db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return nil, err
	}
	b := &pgBatch{tx: tx, t: t}
	if _, err := tx.ExecContext(ctx, `SELECT set_config('idle_in_transaction_session_timeout', $1, true)`,
		strconv.FormatInt(max(lease.Milliseconds(), 1), 10)); err != nil {
		b.abandon()
		return nil, err
	}
	rs, err := tx.QueryContext(ctx, `WITH c AS (
	SELECT id, topic, msg_key, msg_id, metadata, payload, created_at FROM `+t.outbox+`
	WHERE sent_at IS NULL AND failed_at IS NULL
	ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
SELECT id, topic, msg_key, msg_id, metadata, payload,
	extract(epoch FROM clock_timestamp() - created_at)::float8,
	msg_key <> '' AND EXISTS (SELECT 1 FROM `+t.outbox+` p
		WHERE p.topic = c.topic AND p.msg_key = c.msg_key AND p.id < c.id
			AND p.sent_at IS NULL AND p.failed_at IS NULL AND p.id NOT IN (SELECT id FROM c))
FROM c ORDER BY id`, limit)
	if err != nil {
		b.abandon()
		return nil, err
	}
	defer rs.Close()
	now := time.Now()
	for rs.Next() {
		var (
			r             row
			key, id, meta string
			payload       []byte
			age           float64
			blocked       bool
		)
		if err := rs.Scan(&r.id, &r.topic, &key, &id, &meta, &payload, &age, &blocked); err != nil {
			b.abandon()
			return nil, err
		}
		b.n++
		if blocked {
			continue
		}
		r.age, r.claimed = time.Duration(age*float64(time.Second)), now
		if r.msg, err = decode(id, key, meta, payload); err != nil {
			r.msg = nil
			b.bad = append(b.bad, rejection{id: r.id, err: err.Error()})
			continue
		}
		b.rs = append(b.rs, r)
	}
	if err := rs.Err(); err != nil {
		b.abandon()
		return nil, err
	}
	return b, nil
}

// pgBatch holds the claiming transaction.
type pgBatch struct {
	tx  *sql.Tx
	t   tables
	rs  []row
	bad []rejection // rows that do not decode
	n   int         // rows locked, blocked ones included
}

func (b *pgBatch) rows() []row              { return b.rs }
func (b *pgBatch) claimed() int             { return b.n }
func (b *pgBatch) undecodable() []rejection { return b.bad }

func (b *pgBatch) finish(ctx context.Context, sent []int64, rejected []rejection, deleteSent bool) error {
	defer b.abandon()
	if len(sent) > 0 {
		q := `UPDATE ` + b.t.outbox + ` SET sent_at = clock_timestamp() WHERE id = ANY($1::bigint[])`
		if deleteSent {
			q = `DELETE FROM ` + b.t.outbox + ` WHERE id = ANY($1::bigint[])`
		}
		if _, err := b.tx.ExecContext(ctx, q, intArray(sent)); err != nil {
			return err
		}
	}
	for _, r := range rejected {
		if _, err := b.tx.ExecContext(ctx, `UPDATE `+b.t.outbox+` SET failed_at = clock_timestamp(), error = $2 WHERE id = $1`, r.id, r.err); err != nil {
			return err
		}
	}
	return b.tx.Commit()
}

func (b *pgBatch) abandon() { _ = b.tx.Rollback() }

func (postgres) pending(ctx context.Context, db *sql.DB, t tables) (Pending, error) {
	var (
		p   Pending
		age float64
	)
	err := db.QueryRowContext(ctx, `SELECT count(*), COALESCE(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8
	FROM `+t.outbox+` WHERE sent_at IS NULL AND failed_at IS NULL`).Scan(&p.Rows, &age)
	p.OldestAge = time.Duration(age * float64(time.Second))
	return p, err
}

func (postgres) cleanup(ctx context.Context, db *sql.DB, t tables, cutoff time.Time, limit int) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM `+t.outbox+` WHERE id IN (
	SELECT id FROM `+t.outbox+` WHERE sent_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (postgres) record(ctx context.Context, tx *sql.Tx, t tables, group, id string) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO `+t.inbox+` (grp, msg_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, group, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (postgres) purgeInbox(ctx context.Context, db *sql.DB, t tables, cutoff time.Time, limit int) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM `+t.inbox+` WHERE (grp, msg_id) IN (
	SELECT grp, msg_id FROM `+t.inbox+` WHERE received_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// intArray formats ints as a PostgreSQL array literal, which every driver
// passes as text.
func intArray[T int32 | int64](xs []T) string {
	b := make([]byte, 0, 2+len(xs)*8)
	b = append(b, '{')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return string(append(b, '}'))
}
