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
// key (pg_advisory_xact_lock), in the INSERT statement itself but before it
// draws the rows' ids, so two transactions that publish to one key are
// serialized from the first Publish to commit: the later one draws its ids
// only after the earlier committed (or rolled back). Hence, per key, id
// order is commit order, and a committed row never has a lower id than a
// row of its key that commits after it (the identity sequence must keep
// CACHE 1, its default).
//
// Relays claim the oldest pending rows with FOR UPDATE SKIP LOCKED in a
// transaction that they hold while they publish, and mark the rows in it
// before commit. A row whose key has an earlier pending row that is not in
// the claim (so another relay holds it) is left alone: for each key of the
// claim, the first such row ("held") is looked up once in the key index.
// The transaction's idle_in_transaction_session_timeout is the lease: a
// relay that stops answering loses its connection, and its rows go to the
// others.
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
		`CREATE INDEX IF NOT EXISTS ` + index(t.inbox, "received") + ` ON ` + t.inbox + ` (grp, received_at)`,
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
	for len(rows) > 0 {
		n := min(len(rows), pgInsertChunk)
		var q strings.Builder
		args := make([]any, 0, 3+4*n)
		q.WriteString(`INSERT INTO ` + t.outbox + ` (topic, msg_key, msg_id, metadata, payload) `)
		args = append(args, topic)
		if len(locks) > 0 {
			// The first statement takes the keys' locks (in the array's
			// order) before it produces a row, so the rows' ids are drawn
			// after the locks are held.
			q.WriteString(`SELECT $1::text, v.k, v.i, v.m, v.p FROM
	(SELECT count(pg_advisory_xact_lock($2, l)) FROM unnest($3::int4[]) AS l) AS locked
	CROSS JOIN (VALUES `)
			args = append(args, t.lockClass, intArray(locks))
			locks = nil
		} else {
			q.WriteString(`SELECT $1::text, v.k, v.i, v.m, v.p FROM (VALUES `)
		}
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			p := len(args) + 1
			fmt.Fprintf(&q, "($%d::text,$%d::text,$%d::text,$%d::bytea)", p, p+1, p+2, p+3)
			args = append(args, r.key, r.id, r.metadata, r.payload)
		}
		q.WriteString(`) AS v(k, i, m, p)`)
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
	// The lease is the transaction's idle_in_transaction_session_timeout,
	// set (for this transaction only) before the rows are locked.
	rs, err := tx.QueryContext(ctx, `WITH c AS (
	SELECT id, topic, msg_key, msg_id, metadata, payload, created_at FROM `+t.outbox+`
	WHERE sent_at IS NULL AND failed_at IS NULL
		AND (SELECT set_config('idle_in_transaction_session_timeout', $2, true)) IS NOT NULL
	ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED),
k AS MATERIALIZED (
	SELECT topic, msg_key, (SELECT p.id FROM `+t.outbox+` p
		WHERE p.topic = c.topic AND p.msg_key = c.msg_key AND p.msg_key <> ''
			AND p.sent_at IS NULL AND p.failed_at IS NULL
			AND p.id < max(c.id) AND p.id NOT IN (SELECT id FROM c)
		ORDER BY p.topic, p.msg_key, p.id LIMIT 1) AS held
	FROM c WHERE msg_key <> '' GROUP BY topic, msg_key)
SELECT id, topic, msg_key, msg_id, metadata, payload,
	extract(epoch FROM clock_timestamp() - created_at)::float8, NULL::bigint FROM c
UNION ALL
SELECT NULL, topic, msg_key, NULL, NULL, NULL, NULL, held FROM k WHERE held IS NOT NULL`,
		limit, strconv.FormatInt(max(lease.Milliseconds(), 1), 10))
	if err != nil {
		b.abandon()
		return nil, err
	}
	defer rs.Close()
	now := time.Now()
	// held: per topic and key, the first pending row before ours that is
	// not ours; rows of the key after it wait (another relay holds it).
	held := map[[2]string]int64{}
	var claimed []row
	for rs.Next() {
		var (
			r           row
			id, h       sql.NullInt64
			key         string
			msgID, meta sql.NullString
			payload     []byte
			age         sql.NullFloat64
		)
		if err := rs.Scan(&id, &r.topic, &key, &msgID, &meta, &payload, &age, &h); err != nil {
			b.abandon()
			return nil, err
		}
		if !id.Valid {
			held[[2]string{r.topic, key}] = h.Int64
			continue
		}
		r.id, r.age, r.claimed = id.Int64, time.Duration(age.Float64*float64(time.Second)), now
		if r.msg, err = decode(msgID.String, key, meta.String, payload); err != nil {
			b.bad = append(b.bad, rejection{id: r.id, err: err.Error()})
			r.msg = nil
		}
		claimed = append(claimed, r)
	}
	if err := rs.Err(); err != nil {
		b.abandon()
		return nil, err
	}
	b.n = len(claimed)
	sortRows(claimed)
	for _, r := range claimed {
		if r.msg == nil {
			continue // undecodable: rejected
		}
		if h, ok := held[[2]string{r.topic, r.msg.Key}]; ok && h < r.id {
			continue
		}
		b.rs = append(b.rs, r)
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

func (postgres) purgeInbox(ctx context.Context, db *sql.DB, t tables, group string, cutoff time.Time, limit int) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM `+t.inbox+` WHERE grp = $1 AND msg_id IN (
	SELECT msg_id FROM `+t.inbox+` WHERE grp = $1 AND received_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`, group, cutoff, limit)
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
