package txstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
)

// Export is one export request row. Its Status moves pending → running →
// completed or failed; a running export whose worker's lease expired, or
// whose worker restarted, goes back to pending (see Claim,
// RequeueExpired, RequeueWorker).
type Export struct {
	RID         string
	StartDate   string // YYYY-MM-DD
	EndDate     string // YYYY-MM-DD, inclusive
	CallbackURL string
	DownloadURL string
	Status      string
	Progress    int64 // rows written so far
	Error       string
	ObjectKey   string // storage key of the finished CSV
	Worker      string // the exporter that claimed it last
	// Token identifies the claim: one process's claim of the export (a
	// worker restarted under the same name has another token).
	Token string
	// LeaseUntil is when the running export's claim expires unless its
	// worker sends a heartbeat.
	LeaseUntil time.Time
	// IdempotencyKey is the client's Idempotency-Key, empty when none, and
	// RequestHash identifies the request's content under it.
	IdempotencyKey string
	RequestHash    string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

const exportColumns = `rid, start_date, end_date, callback_url, download_url, status, progress, error, object_key, worker,
	claim_token, lease_until, COALESCE(idempotency_key, ''), request_hash, created_at, updated_at`

func scanExport(row interface{ Scan(...any) error }) (Export, error) {
	var e Export
	err := row.Scan(&e.RID, &e.StartDate, &e.EndDate, &e.CallbackURL, &e.DownloadURL, &e.Status, &e.Progress, &e.Error,
		&e.ObjectKey, &e.Worker, &e.Token, timeScanner{&e.LeaseUntil}, &e.IdempotencyKey, &e.RequestHash,
		timeScanner{&e.CreatedAt}, timeScanner{&e.UpdatedAt})
	return e, err
}

// Querier is what the export queries run on: the *sql.DB, or a *sql.Tx to
// make them part of a transaction (with an outbox publish, say).
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// BeginTx begins a database transaction; on SQLite it holds the write lock
// from the start.
func (s *Store) BeginTx(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("txstore: begin: %w", err)
	}
	return tx, nil
}

// CreateExport inserts e with status pending.
func (s *Store) CreateExport(ctx context.Context, e Export) error {
	return s.createExport(ctx, s.db, e)
}

// CreateExportTx inserts e with status pending in tx, so that the request
// and its export.requested event (an outbox publish in the same tx) are
// stored together or not at all. A request with an IdempotencyKey that
// another request holds fails with an error wrapping ErrDuplicateKey.
func (s *Store) CreateExportTx(ctx context.Context, tx *sql.Tx, e Export) error {
	return s.createExport(ctx, tx, e)
}

// ErrDuplicateKey is returned for an Idempotency-Key another request holds.
var ErrDuplicateKey = errors.New("txstore: idempotency key in use")

func (s *Store) createExport(ctx context.Context, q Querier, e Export) error {
	now := time.Now()
	var key any
	if e.IdempotencyKey != "" {
		key = e.IdempotencyKey
	}
	_, err := q.ExecContext(ctx, s.d.q(`INSERT INTO export_requests
		(rid, start_date, end_date, callback_url, download_url, status, idempotency_key, request_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.RID, e.StartDate, e.EndDate, e.CallbackURL, e.DownloadURL, events.StatusPending, key, e.RequestHash, s.d.time(now), s.d.time(now))
	if err != nil {
		if key != nil && isUniqueViolation(err) {
			return fmt.Errorf("%w: %w", ErrDuplicateKey, err)
		}
		return fmt.Errorf("txstore: create export %s: %w", e.RID, err)
	}
	return nil
}

// Export returns the request rid, or an error wrapping ErrNotFound.
func (s *Store) Export(ctx context.Context, rid string) (Export, error) {
	e, err := scanExport(s.db.QueryRowContext(ctx, s.d.q(`SELECT `+exportColumns+` FROM export_requests WHERE rid = ?`), rid))
	if errors.Is(err, sql.ErrNoRows) {
		return Export{}, fmt.Errorf("%w: export %s", ErrNotFound, rid)
	}
	if err != nil {
		return Export{}, fmt.Errorf("txstore: read export %s: %w", rid, err)
	}
	return e, nil
}

// ExportByIdempotencyKey returns the request made with key, in q (a
// transaction, to decide atomically), or an error wrapping ErrNotFound.
// A key whose request is older than since is first released (its request
// stays, without the key), so that keys expire.
func (s *Store) ExportByIdempotencyKey(ctx context.Context, q Querier, key string, since time.Time) (Export, error) {
	if _, err := q.ExecContext(ctx, s.d.q(`UPDATE export_requests SET idempotency_key = NULL WHERE idempotency_key = ? AND created_at < ?`),
		key, s.d.time(since)); err != nil {
		return Export{}, fmt.Errorf("txstore: expire idempotency key: %w", err)
	}
	e, err := scanExport(q.QueryRowContext(ctx, s.d.q(`SELECT `+exportColumns+` FROM export_requests WHERE idempotency_key = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return Export{}, fmt.Errorf("%w: idempotency key", ErrNotFound)
	}
	if err != nil {
		return Export{}, fmt.Errorf("txstore: read export by idempotency key: %w", err)
	}
	return e, nil
}

// Claim makes worker, under token (one per process), the one running
// export rid for lease, and reports whether it did. It claims a pending
// export; a running one whose lease expired (its worker stopped sending
// heartbeats); and a running one claimed by a previous process of the same
// worker (same name, another token: the worker restarted). A request that
// is completed or failed, or running under a live lease of another worker
// or of this very process, is not claimed, so that concurrent or repeated
// deliveries run it once.
func (s *Store) Claim(ctx context.Context, rid, worker, token string, lease time.Duration) (bool, error) {
	now := time.Now()
	return s.execChanged(ctx, s.db, "claim export", `UPDATE export_requests
		SET status = ?, worker = ?, claim_token = ?, lease_until = ?, progress = 0, error = '', updated_at = ?
		WHERE rid = ? AND (status = ? OR (status = ? AND (lease_until IS NULL OR lease_until <= ? OR (worker = ? AND claim_token <> ?))))`,
		events.StatusRunning, worker, token, s.d.time(now.Add(lease)), s.d.time(now),
		rid, events.StatusPending, events.StatusRunning, s.d.time(now), worker, token)
}

// Heartbeat extends the lease of rid's claim token to lease from now and
// reports whether the claim is still held (false: the export was requeued,
// and another worker may run it now; stop).
func (s *Store) Heartbeat(ctx context.Context, rid, token string, lease time.Duration) (bool, error) {
	now := time.Now()
	return s.execChanged(ctx, s.db, "export heartbeat", `UPDATE export_requests SET lease_until = ?, updated_at = ?
		WHERE rid = ? AND claim_token = ? AND status = ?`,
		s.d.time(now.Add(lease)), s.d.time(now), rid, token, events.StatusRunning)
}

// Progress records that the claim token has written rows rows of rid, and
// extends its lease as Heartbeat does; it reports whether the claim is
// still held.
func (s *Store) Progress(ctx context.Context, rid, token string, rows int64, lease time.Duration) (bool, error) {
	now := time.Now()
	return s.execChanged(ctx, s.db, "update export progress", `UPDATE export_requests SET progress = ?, lease_until = ?, updated_at = ?
		WHERE rid = ? AND claim_token = ? AND status = ?`,
		rows, s.d.time(now.Add(lease)), s.d.time(now), rid, token, events.StatusRunning)
}

// Release hands rid, claimed under token, back as pending, for another try.
func (s *Store) Release(ctx context.Context, rid, token string) error {
	return s.exec(ctx, s.db, "release export", `UPDATE export_requests SET status = ?, lease_until = NULL, updated_at = ?
		WHERE rid = ? AND claim_token = ? AND status = ?`,
		events.StatusPending, s.d.time(time.Now()), rid, token, events.StatusRunning)
}

// Finish sets the final status of rid, claimed under token: completed with
// the row count and object key, or failed with errText. It reports whether
// the claim was still held (false: the export was requeued and another
// worker owns it now).
func (s *Store) Finish(ctx context.Context, rid, token, status string, rows int64, objectKey, errText string) (bool, error) {
	return s.FinishTx(ctx, s.db, rid, token, status, rows, objectKey, errText)
}

// FinishTx is Finish in q (a transaction, to store the export's event
// with it).
func (s *Store) FinishTx(ctx context.Context, q Querier, rid, token, status string, rows int64, objectKey, errText string) (bool, error) {
	return s.execChanged(ctx, q, "finish export", `UPDATE export_requests
		SET status = ?, progress = ?, object_key = ?, error = ?, lease_until = NULL, updated_at = ?
		WHERE rid = ? AND claim_token = ? AND status = ?`,
		status, rows, objectKey, errText, s.d.time(time.Now()), rid, token, events.StatusRunning)
}

// FailTx marks rid failed with errText in q (a transaction, to store the
// export's event with it) whatever its state, unless it already finished;
// for requests that cannot run at all. It returns the export and whether
// it marked it.
func (s *Store) FailTx(ctx context.Context, q Querier, rid, errText string) (Export, bool, error) {
	now := time.Now()
	ok, err := s.execChanged(ctx, q, "fail export", `UPDATE export_requests SET status = ?, error = ?, lease_until = NULL, updated_at = ?
		WHERE rid = ? AND status IN (?, ?)`,
		events.StatusFailed, errText, s.d.time(now), rid, events.StatusPending, events.StatusRunning)
	if err != nil || !ok {
		return Export{}, false, err
	}
	e, err := scanExport(q.QueryRowContext(ctx, s.d.q(`SELECT `+exportColumns+` FROM export_requests WHERE rid = ?`), rid))
	if err != nil {
		return Export{}, false, fmt.Errorf("txstore: read export %s: %w", rid, err)
	}
	return e, true, nil
}

// RequeueExpired puts back to pending, in tx, at most limit running
// exports whose lease expired (their worker died or hangs), and returns
// them, so that the caller publishes export.requested for each in the same
// transaction.
func (s *Store) RequeueExpired(ctx context.Context, tx *sql.Tx, limit int) ([]Export, error) {
	now := time.Now()
	due, err := s.exports(ctx, tx, `WHERE status = ? AND lease_until <= ? ORDER BY lease_until LIMIT ?`,
		events.StatusRunning, s.d.time(now), limit)
	if err != nil {
		return nil, err
	}
	var out []Export
	for _, e := range due {
		ok, err := s.execChanged(ctx, tx, "requeue export", `UPDATE export_requests SET status = ?, lease_until = NULL, updated_at = ?
			WHERE rid = ? AND status = ? AND claim_token = ? AND lease_until <= ?`,
			events.StatusPending, s.d.time(now), e.RID, events.StatusRunning, e.Token, s.d.time(now))
		if err != nil {
			return nil, err
		}
		if ok {
			e.Status = events.StatusPending
			out = append(out, e)
		}
	}
	return out, nil
}

// RequeueWorker puts back to pending, in tx, the running exports that a
// previous process of worker claimed (a token other than token): the
// worker restarted, so nothing runs them. It returns them, so that the
// caller publishes export.requested for each in the same transaction.
func (s *Store) RequeueWorker(ctx context.Context, tx *sql.Tx, worker, token string) ([]Export, error) {
	mine, err := s.exports(ctx, tx, `WHERE status = ? AND worker = ? AND claim_token <> ?`, events.StatusRunning, worker, token)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.d.q(`UPDATE export_requests SET status = ?, lease_until = NULL, updated_at = ?
		WHERE status = ? AND worker = ? AND claim_token <> ?`),
		events.StatusPending, s.d.time(time.Now()), events.StatusRunning, worker, token); err != nil {
		return nil, fmt.Errorf("txstore: requeue exports of %s: %w", worker, err)
	}
	for i := range mine {
		mine[i].Status = events.StatusPending
	}
	return mine, nil
}

func (s *Store) exports(ctx context.Context, q Querier, where string, args ...any) ([]Export, error) {
	rows, err := q.QueryContext(ctx, s.d.q(`SELECT `+exportColumns+` FROM export_requests `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("txstore: query exports: %w", err)
	}
	defer rows.Close()
	var out []Export
	for rows.Next() {
		e, err := scanExport(rows)
		if err != nil {
			return nil, fmt.Errorf("txstore: scan export: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("txstore: query exports: %w", err)
	}
	return out, nil
}

func (s *Store) exec(ctx context.Context, q Querier, what, query string, args ...any) error {
	if _, err := q.ExecContext(ctx, s.d.q(query), args...); err != nil {
		return fmt.Errorf("txstore: %s: %w", what, err)
	}
	return nil
}

func (s *Store) execChanged(ctx context.Context, q Querier, what, query string, args ...any) (bool, error) {
	res, err := q.ExecContext(ctx, s.d.q(query), args...)
	if err != nil {
		return false, fmt.Errorf("txstore: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("txstore: %s: %w", what, err)
	}
	return n > 0, nil
}
