package transactions

import (
	"context"
	"time"

	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/pubsub"
)

// sweepBatch is how many expired leases one sweep requeues at most.
const sweepBatch = 100

// background runs while the API serves: it creates the consumer groups
// (retrying until the broker answers: no relay publish may precede them,
// or a broker without the group would drop the request), then runs the
// outbox relay and the lease sweeper until ctx ends.
func (s *api) background(ctx context.Context) {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := service.CreateGroups(ctx, s.Publisher, s.Groups, s.topic.Name())
		if err == nil {
			break
		}
		if attempt == 3 || attempt%10 == 0 { // the broker may still be connecting at first
			s.Logger.Warn("consumer groups not created yet; the outbox keeps requests until they are", "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.outbox.Run(ctx); err != nil {
			s.Logger.Error("outbox relay stopped", "err", err)
		}
	}()
	s.sweepLoop(ctx)
	<-done
}

// sweepLoop runs sweep every SweepInterval until ctx ends.
func (s *api) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweep(ctx)
	}
}

// sweep hands the exports whose worker's lease expired (the worker died or
// hangs) back to the exporter group: in one transaction it puts each back
// to pending and stores its export.requested in the outbox.
func (s *api) sweep(ctx context.Context) {
	tx, err := s.Store.BeginTx(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.Error("lease sweep", "err", err)
		}
		return
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	due, err := s.Store.RequeueExpired(ctx, tx, sweepBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.Error("lease sweep", "err", err)
		}
		return
	}
	if len(due) == 0 {
		return
	}
	for _, e := range due {
		ev := requested(e.RID, e.StartDate, e.EndDate, e.CreatedAt)
		if err := s.topic.Publish(ctx, s.outbox.Tx(tx), ev, pubsub.WithKey(e.RID)); err != nil {
			s.Logger.Error("lease sweep: store export.requested", "rid", e.RID, "err", err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		s.Logger.Error("lease sweep: commit", "err", err)
		return
	}
	for _, e := range due {
		s.Logger.Warn("export's worker stopped renewing its lease; handed to another worker", "rid", e.RID, "holder", e.Worker, "lease_until", e.LeaseUntil, "progress", e.Progress)
	}
}
