package transactions

import (
	"context"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
)

// sweepBatch is how many requests one sweep publishes at most.
const sweepBatch = 100

// sweepLoop runs sweep at once and then every SweepInterval until ctx ends.
func (s *api) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.SweepInterval)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep is the outbox relay: it publishes export.requested for every
// request that the API stored but could not publish, and again for those
// whose event or worker was lost (no progress for StaleAfter; a stale
// running export is first put back to pending so that a worker can claim
// it). A publish that fails leaves the row for the next sweep.
func (s *api) sweep(ctx context.Context) {
	due, err := s.Store.ExportsToPublish(ctx, s.SweepInterval, s.StaleAfter, sweepBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.Error("outbox sweep: query", "err", err)
		}
		return
	}
	for _, e := range due {
		if e.Status == events.StatusRunning || !e.PublishedAt.IsZero() {
			ok, err := s.Store.Requeue(ctx, e.RID, s.StaleAfter)
			if err != nil || !ok {
				continue // it moved on meanwhile, or the database is down: next sweep
			}
			s.Logger.Warn("outbox sweep: export made no progress; requeued", "rid", e.RID, "was", e.Status, "worker", e.Worker)
		}
		if err := s.publish(ctx, e); err != nil {
			s.Logger.Warn("outbox sweep: publish failed; will retry", "rid", e.RID, "err", err)
			return // the broker is likely down: do not hammer it with the rest
		}
		s.Logger.Info("outbox sweep: published pending export", "rid", e.RID)
	}
}
