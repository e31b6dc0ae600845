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
// completed or failed; a running export whose worker stopped updating it
// goes back to pending (see ExportsToPublish and Claim).
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
	CreatedAt   time.Time
	UpdatedAt   time.Time
	PublishedAt time.Time // zero until export.requested was accepted by the broker
	NotifiedAt  time.Time // zero until export.completed/failed was accepted
}

const exportColumns = `rid, start_date, end_date, callback_url, download_url, status, progress, error, object_key, worker,
	created_at, updated_at, published_at, notified_at`

func scanExport(row interface{ Scan(...any) error }) (Export, error) {
	var e Export
	err := row.Scan(&e.RID, &e.StartDate, &e.EndDate, &e.CallbackURL, &e.DownloadURL, &e.Status, &e.Progress, &e.Error,
		&e.ObjectKey, &e.Worker, timeScanner{&e.CreatedAt}, timeScanner{&e.UpdatedAt}, timeScanner{&e.PublishedAt}, timeScanner{&e.NotifiedAt})
	return e, err
}

// CreateExport inserts e with status pending; this is the outbox write that
// comes before any publish.
func (s *Store) CreateExport(ctx context.Context, e Export) error {
	now := time.Now()
	_, err := s.db.ExecContext(ctx, s.d.q(`INSERT INTO export_requests
		(rid, start_date, end_date, callback_url, download_url, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		e.RID, e.StartDate, e.EndDate, e.CallbackURL, e.DownloadURL, events.StatusPending, s.d.time(now), s.d.time(now))
	if err != nil {
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

// MarkPublished records that export.requested of rid was accepted by the
// broker.
func (s *Store) MarkPublished(ctx context.Context, rid string) error {
	return s.exec(ctx, "mark export published", `UPDATE export_requests SET published_at = ? WHERE rid = ?`, s.d.time(time.Now()), rid)
}

// MarkNotified records that export.completed or export.failed of rid was
// accepted by the broker.
func (s *Store) MarkNotified(ctx context.Context, rid string) error {
	return s.exec(ctx, "mark export notified", `UPDATE export_requests SET notified_at = ? WHERE rid = ?`, s.d.time(time.Now()), rid)
}

// ExportsToPublish returns, oldest first and at most limit, the requests
// whose export.requested must be published (again): pending ones never
// published and created at least grace ago (younger ones are still being
// published by the API), and pending or running ones not updated for
// staleAfter (their event or their worker was lost).
func (s *Store) ExportsToPublish(ctx context.Context, grace, staleAfter time.Duration, limit int) ([]Export, error) {
	now := time.Now()
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT `+exportColumns+` FROM export_requests
		WHERE (status = ? AND published_at IS NULL AND created_at <= ?)
		   OR (status IN (?, ?) AND updated_at <= ?)
		ORDER BY created_at LIMIT ?`),
		events.StatusPending, s.d.time(now.Add(-grace)),
		events.StatusPending, events.StatusRunning, s.d.time(now.Add(-staleAfter)), limit)
	if err != nil {
		return nil, fmt.Errorf("txstore: query exports to publish: %w", err)
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
		return nil, fmt.Errorf("txstore: query exports to publish: %w", err)
	}
	return out, nil
}

// Requeue marks a stale running export pending again (its worker stopped
// updating it) and bumps its updated_at, so that the next sweep does not pick
// it at once. It reports whether it changed the row.
func (s *Store) Requeue(ctx context.Context, rid string, staleAfter time.Duration) (bool, error) {
	now := time.Now()
	return s.execChanged(ctx, "requeue export", `UPDATE export_requests SET status = ?, updated_at = ?
		WHERE rid = ? AND status IN (?, ?) AND updated_at <= ?`,
		events.StatusPending, s.d.time(now), rid, events.StatusPending, events.StatusRunning, s.d.time(now.Add(-staleAfter)))
}

// Claim makes worker the one running export rid, if it is pending, and
// reports whether it did. A request that is running, completed or failed is
// not claimed, so concurrent or repeated deliveries of one request run it
// once.
func (s *Store) Claim(ctx context.Context, rid, worker string) (bool, error) {
	return s.execChanged(ctx, "claim export", `UPDATE export_requests SET status = ?, worker = ?, progress = 0, error = '', updated_at = ?
		WHERE rid = ? AND status = ?`,
		events.StatusRunning, worker, s.d.time(time.Now()), rid, events.StatusPending)
}

// Progress records that worker has written rows rows of rid.
func (s *Store) Progress(ctx context.Context, rid, worker string, rows int64) error {
	return s.exec(ctx, "update export progress", `UPDATE export_requests SET progress = ?, updated_at = ?
		WHERE rid = ? AND worker = ? AND status = ?`,
		rows, s.d.time(time.Now()), rid, worker, events.StatusRunning)
}

// Release hands rid, claimed by worker, back as pending, for another try.
func (s *Store) Release(ctx context.Context, rid, worker string) error {
	return s.exec(ctx, "release export", `UPDATE export_requests SET status = ?, updated_at = ?
		WHERE rid = ? AND worker = ? AND status = ?`,
		events.StatusPending, s.d.time(time.Now()), rid, worker, events.StatusRunning)
}

// Finish sets the final status of rid, claimed by worker: completed with
// the row count and object key, or failed with errText. It reports whether
// worker still held the claim (false: the export was requeued and another
// worker owns it now).
func (s *Store) Finish(ctx context.Context, rid, worker, status string, rows int64, objectKey, errText string) (bool, error) {
	return s.execChanged(ctx, "finish export", `UPDATE export_requests SET status = ?, progress = ?, object_key = ?, error = ?, updated_at = ?
		WHERE rid = ? AND worker = ? AND status = ?`,
		status, rows, objectKey, errText, s.d.time(time.Now()), rid, worker, events.StatusRunning)
}

// Fail marks rid failed with errText whatever its state, unless it already
// finished; for requests that cannot run at all.
func (s *Store) Fail(ctx context.Context, rid, errText string) error {
	return s.exec(ctx, "fail export", `UPDATE export_requests SET status = ?, error = ?, updated_at = ?
		WHERE rid = ? AND status IN (?, ?)`,
		events.StatusFailed, errText, s.d.time(time.Now()), rid, events.StatusPending, events.StatusRunning)
}

func (s *Store) exec(ctx context.Context, what, query string, args ...any) error {
	if _, err := s.db.ExecContext(ctx, s.d.q(query), args...); err != nil {
		return fmt.Errorf("txstore: %s: %w", what, err)
	}
	return nil
}

func (s *Store) execChanged(ctx context.Context, what, query string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.d.q(query), args...)
	if err != nil {
		return false, fmt.Errorf("txstore: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("txstore: %s: %w", what, err)
	}
	return n > 0, nil
}
