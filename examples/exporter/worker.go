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
)

// worker handles export.requested events.
type worker struct {
	Deps
	completed, failed pubsub.Topic[events.ExportFinished]
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
	switch e.Status {
	case events.StatusCompleted, events.StatusFailed:
		if e.NotifiedAt.IsZero() {
			// Finished, but its event was not published (the worker failed
			// right after): publish it now.
			return w.announce(ctx, e)
		}
		log.Debug("duplicate delivery of a finished export ignored")
		return nil
	case events.StatusRunning:
		log.Info("export is running on another worker; leaving it", "worker", e.Worker)
		return nil
	}
	claimed, err := w.Store.Claim(ctx, e.RID, w.Worker)
	if err != nil {
		return err
	}
	if !claimed {
		log.Info("export claimed by another worker")
		return nil
	}
	log.Info("export started", "start", e.StartDate, "end", e.EndDate)
	w.progressed(ctx, e.RID, 0)
	rows, runErr := w.run(ctx, e)
	switch {
	case runErr == nil:
		return w.finish(ctx, e, events.StatusCompleted, rows, "")
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
	e, err := w.Store.Export(ctx, ev.RID)
	if err != nil {
		log.Error("export dead-lettered; could not mark it failed", "err", err)
		return
	}
	if e.Status == events.StatusCompleted || e.Status == events.StatusFailed {
		return
	}
	log.Error("export failed", "err", st.Cause)
	if err := w.failExport(ctx, e, st.Cause.Error()); err != nil {
		log.Error("could not mark the export failed", "err", err)
	}
}

// run writes the CSV of e's range to storage, updating progress, and
// returns the number of rows.
func (w *worker) run(ctx context.Context, e txstore.Export) (int64, error) {
	from, to, err := txstore.ParseDateRange(e.StartDate, e.EndDate)
	if err != nil {
		return 0, pubsub.Permanent(err)
	}
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	f, err := w.Storage.Create(wctx, ObjectKey(e.RID))
	if err != nil {
		return 0, err
	}
	rows, err := w.Store.WriteCSV(ctx, f, from, to, w.ProgressEvery, func(n int64) error {
		if err := w.Store.Progress(ctx, e.RID, w.Worker, n); err != nil {
			return err
		}
		w.progressed(ctx, e.RID, n)
		return nil
	})
	if err != nil {
		abort() // discard the partial file
		_ = f.Close()
		return rows, err
	}
	if err := f.Close(); err != nil {
		return rows, fmt.Errorf("store the CSV: %w", err)
	}
	return rows, nil
}

// finish records e's final status and announces it.
func (w *worker) finish(ctx context.Context, e txstore.Export, status string, rows int64, errText string) error {
	key := ""
	if status == events.StatusCompleted {
		key = ObjectKey(e.RID)
	}
	held, err := w.Store.Finish(ctx, e.RID, w.Worker, status, rows, key, errText)
	if err != nil {
		return err
	}
	if !held {
		w.Logger.Warn("export was requeued while running; another worker owns it now", "rid", e.RID)
		return nil
	}
	e.Status, e.Progress, e.Error, e.ObjectKey, e.UpdatedAt = status, rows, errText, key, time.Now().UTC()
	w.Logger.Info("export "+status, "rid", e.RID, "rows", rows)
	return w.announce(ctx, e)
}

// failExport marks e failed with errText (whatever worker held it) and
// announces export.failed.
func (w *worker) failExport(ctx context.Context, e txstore.Export, errText string) error {
	if err := w.Store.Fail(ctx, e.RID, errText); err != nil {
		return err
	}
	e, err := w.Store.Export(ctx, e.RID)
	if err != nil {
		return err
	}
	return w.announce(ctx, e)
}

// announce publishes export.completed or export.failed for the finished e
// and records that it did. A failed publish returns an error, so the event is
// redelivered and announce runs again.
func (w *worker) announce(ctx context.Context, e txstore.Export) error {
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
	if err := topic.Publish(ctx, w.Broker, ev, pubsub.WithKey(e.RID), pubsub.WithID(e.RID+"."+e.Status)); err != nil {
		return fmt.Errorf("publish %s: %w", topic.Name(), err)
	}
	return w.Store.MarkNotified(ctx, e.RID)
}

// release hands rid back as pending, with a context of its own so that it
// happens during shutdown too; if it fails, the sweeper requeues the request
// once it is stale.
func (w *worker) release(rid string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
	defer cancel()
	if err := w.Store.Release(ctx, rid, w.Worker); err != nil {
		log.Warn("could not hand the export back; the sweeper will requeue it when stale", "err", err)
	}
}
