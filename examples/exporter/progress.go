package exporter

import (
	"context"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/pubsub"
)

// progressTimeout bounds the publish of one progress event.
const progressTimeout = 2 * time.Second

// progressed publishes export.progress for rid: running, rows written so
// far. It is best effort: the database holds the progress, and a failed
// publish is logged and does not stop the export.
func (w *worker) progressed(ctx context.Context, rid string, rows int64) {
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	ev := events.ExportProgress{RID: rid, Status: events.StatusRunning, Rows: rows, Worker: w.Worker, At: time.Now().UTC()}
	if err := w.Namespace.ExportProgress().Publish(ctx, w.Broker, ev, pubsub.WithKey(rid)); err != nil {
		w.Logger.Warn("export.progress not published (the export goes on)", "rid", rid, "rows", rows, "err", err)
	}
}
