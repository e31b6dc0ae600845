package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
)

// errLostClaim stops an export whose claim went to another worker.
var errLostClaim = errors.New("the export's lease expired and another worker claimed it")

// worker handles export.requested events.
type worker struct {
	Deps
	// token identifies this process's claims: Worker plus a random part, so
	// that a restarted worker of the same name tells its previous claims
	// from its own.
	token             string
	outbox            *outbox.Outbox
	requested         pubsub.Topic[events.ExportRequested]
	completed, failed pubsub.Topic[events.ExportFinished]
}

// takeBack hands back the exports a previous process of this worker held
// when it stopped without finishing them (killed, say): each goes back to
// pending with a new export.requested in the outbox, in one transaction,
// so that a worker (this one, most likely) resumes it at once rather than
// when its lease expires.
func (w *worker) takeBack(ctx context.Context) error {
	tx, err := w.Store.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	mine, err := w.Store.RequeueWorker(ctx, tx, w.Worker, w.token)
	if err != nil {
		return err
	}
	for _, e := range mine {
		ev := events.ExportRequested{RID: e.RID, StartDate: e.StartDate, EndDate: e.EndDate, RequestedAt: e.CreatedAt}
		if err := w.requested.Publish(ctx, w.outbox.Tx(tx), ev, pubsub.WithKey(e.RID)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("take back exports: %w", err)
	}
	for _, e := range mine {
		w.Logger.Warn("export left running by this worker's previous process; requeued", "rid", e.RID, "progress", e.Progress)
	}
	return nil
}

// handle runs one export request, idempotently: the database row, not the
// event, says what is left to do.
func (w *worker) handle(ctx context.Context, ev events.ExportRequested, m *pubsub.Message) error {
	log := w.Logger.With("rid", ev.RID, "attempt", m.Attempt)
	e, err := w.Store.Export(ctx, ev.RID)
	if errors.Is(err, txstore.ErrNotFound) {
		return pubsub.Permanent(err)
	}
	if err != nil {
		return err
	}
	if e.Status == events.StatusCompleted || e.Status == events.StatusFailed {
		log.Debug("duplicate delivery of a finished export ignored")
		return nil
	}
	claimed, err := w.Store.Claim(ctx, e.RID, w.Worker, w.token, w.Lease)
	if err != nil {
		return err
	}
	if !claimed {
		// Running under a live lease (here or elsewhere): its holder
		// finishes it, or the lease sweep requeues it if the holder dies.
		log.Info("export is running under another claim; leaving it", "holder", e.Worker, "lease_until", e.LeaseUntil)
		return nil
	}
	if e.Status == events.StatusRunning {
		log.Info("export re-claimed", "previous_holder", e.Worker)
	}
	if pr, ok := w.Storage.(interface {
		RemovePartials(ctx context.Context, key string) (int, error)
	}); ok {
		if n, err := pr.RemovePartials(ctx, ObjectKey(e.RID)); err != nil {
			log.Warn("could not remove a previous attempt's partial file", "err", err)
		} else if n > 0 {
			log.Info("removed partial files of a previous attempt", "files", n)
		}
	}
	log.Info("export started", "start", e.StartDate, "end", e.EndDate)
	w.progressed(ctx, e.RID, 0)
	rows, runErr := w.run(ctx, e)
	switch {
	case runErr == nil:
		return w.finish(ctx, e, rows)
	case errors.Is(runErr, errLostClaim):
		log.Warn("export abandoned", "rows", rows, "err", runErr)
		return nil
	case ctx.Err() != nil:
		// Shutting down: hand the request back for another worker.
		w.release(e.RID, log)
		return ctx.Err()
	default:
		// The delivery loop retries it, or dead-letters it after its last
		// attempt (or at once for a Permanent error): onSettle then marks
		// the export failed.
		log.Warn("export attempt failed", "rows", rows, "err", runErr)
		w.release(e.RID, log)
		return runErr
	}
}

// onSettle is the subscription's observer: when the delivery loop
// dead-letters a request (its last attempt failed, or a Permanent error),
// the export is marked failed and export.failed announced. The loop, not
// the handler, decides that an attempt was the last.
func (w *worker) onSettle(_ context.Context, st pubsub.Settlement) {
	if st.Outcome != pubsub.OutcomeDeadLettered {
		return
	}
	var ev events.ExportRequested
	if err := pubsub.JSON.Decode(st.Message.Payload, &ev); err != nil || ev.RID == "" {
		return // not an export request: nothing to mark
	}
	log := w.Logger.With("rid", ev.RID, "attempts", st.Message.Attempt)
	ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
	defer cancel()
	log.Error("export failed", "err", st.Cause)
	if err := w.inTx(ctx, func(tx txstore.Querier, pub pubsub.Publisher) error {
		e, failed, err := w.Store.FailTx(ctx, tx, ev.RID, st.Cause.Error())
		if err != nil || !failed {
			return err
		}
		return w.announce(ctx, pub, e)
	}); err != nil {
		log.Error("could not mark the export failed", "err", err)
	}
}

// run writes the CSV of e's range to storage, updating progress (which
// renews the lease) and sending heartbeats between updates, and returns
// the number of rows. It fails with errLostClaim when the lease went to
// another worker.
func (w *worker) run(ctx context.Context, e txstore.Export) (int64, error) {
	from, to, err := txstore.ParseDateRange(e.StartDate, e.EndDate)
	if err != nil {
		return 0, pubsub.Permanent(err)
	}
	wctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	stop := w.heartbeats(wctx, e.RID, abort)
	defer stop()
	f, err := w.Storage.Create(wctx, ObjectKey(e.RID))
	if err != nil {
		return 0, err
	}
	rows, err := w.Store.WriteCSV(wctx, f, from, to, w.ProgressEvery, func(n int64) error {
		held, err := w.Store.Progress(wctx, e.RID, w.token, n, w.Lease)
		if err == nil && !held {
			return errLostClaim
		}
		if err == nil {
			w.progressed(wctx, e.RID, n)
		}
		return err
	})
	if err != nil {
		abort(err) // discard the partial file
		_ = f.Close()
		if c := context.Cause(wctx); errors.Is(c, errLostClaim) {
			return rows, c
		}
		return rows, err
	}
	if err := f.Close(); err != nil {
		if c := context.Cause(wctx); errors.Is(c, errLostClaim) {
			return rows, c
		}
		return rows, fmt.Errorf("store the CSV: %w", err)
	}
	return rows, nil
}

// heartbeats renews rid's lease every Lease/3 until stop is called, and
// aborts the export (abort with errLostClaim) when the claim is gone.
func (w *worker) heartbeats(ctx context.Context, rid string, abort context.CancelCauseFunc) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			held, err := w.Store.Heartbeat(ctx, rid, w.token, w.Lease)
			switch {
			case err != nil && ctx.Err() == nil:
				w.Logger.Warn("export heartbeat failed; retrying", "rid", rid, "err", err)
			case err == nil && !held:
				abort(errLostClaim)
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// finish marks e completed and stores export.completed in the outbox, in
// one transaction.
func (w *worker) finish(ctx context.Context, e txstore.Export, rows int64) error {
	key := ObjectKey(e.RID)
	var held bool
	err := w.inTx(ctx, func(tx txstore.Querier, pub pubsub.Publisher) error {
		var err error
		held, err = w.Store.FinishTx(ctx, tx, e.RID, w.token, events.StatusCompleted, rows, key, "")
		if err != nil || !held {
			return err
		}
		e.Status, e.Progress, e.Error, e.ObjectKey, e.UpdatedAt = events.StatusCompleted, rows, "", key, time.Now().UTC()
		return w.announce(ctx, pub, e)
	})
	if err != nil {
		return err
	}
	if !held {
		w.Logger.Warn("export was requeued while running; another worker owns it now", "rid", e.RID)
		return nil
	}
	w.Logger.Info("export completed", "rid", e.RID, "rows", rows)
	return nil
}

// inTx runs f in a database transaction with a publisher that stores
// messages in the outbox as part of it, and commits.
func (w *worker) inTx(ctx context.Context, f func(tx txstore.Querier, pub pubsub.Publisher) error) error {
	tx, err := w.Store.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := f(tx, w.outbox.Tx(tx)); err != nil {
		return err
	}
	return tx.Commit()
}

// announce publishes export.completed or export.failed for the finished e
// through pub (the outbox, in e's transaction).
func (w *worker) announce(ctx context.Context, pub pubsub.Publisher, e txstore.Export) error {
	ev := events.ExportFinished{
		RID: e.RID, Status: e.Status, Rows: e.Progress, Error: e.Error,
		CallbackURL: e.CallbackURL, FinishedAt: e.UpdatedAt,
	}
	if ev.FinishedAt.IsZero() {
		ev.FinishedAt = time.Now().UTC()
	}
	topic := w.failed
	if e.Status == events.StatusCompleted {
		topic = w.completed
		ev.URL = e.DownloadURL
	}
	if err := topic.Publish(ctx, pub, ev, pubsub.WithKey(e.RID), pubsub.WithID(e.RID+"."+e.Status)); err != nil {
		return fmt.Errorf("publish %s: %w", topic.Name(), err)
	}
	return nil
}

// release hands rid back as pending, with a context of its own so that it
// happens during shutdown too; if it fails, the lease expires and the
// transactions service's sweep requeues the request.
func (w *worker) release(rid string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
	defer cancel()
	if err := w.Store.Release(ctx, rid, w.token); err != nil {
		log.Warn("could not hand the export back; it is requeued when its lease expires", "err", err)
	}
}
