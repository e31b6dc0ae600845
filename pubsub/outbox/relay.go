package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// firstRepoll is the first delay of the quick re-polls that follow a
// wake-up or a batch: rows are stored (and wake the relay) before their
// transaction commits, so the relay looks again after 100µs, 200µs, 400µs, ...
// until PollInterval.
const firstRepoll = 100 * time.Microsecond

// linger is how long a relay waits after a partial batch, wake-ups
// ignored, so that under load rows gather into batches instead of each
// costing a claim.
const linger = time.Millisecond

// cleanupChunk is how many rows one cleanup statement deletes at most, and
// cleanupRounds how many statements one cleanup runs at most.
const (
	cleanupChunk  = 5000
	cleanupRounds = 20
)

// Run is a relay: it publishes the committed messages of the table through
// Config.Publisher, oldest first, in batches of up to Config.BatchSize,
// and marks each published row only after Publish returned nil for it. It
// blocks until ctx ends, then returns nil: a Publish in progress is
// cancelled (its messages are published again by the next relay, at least
// once), and rows already published are marked first (waiting for the
// database at most Config.Lease).
// It returns an error wrapping pubsub.ErrClosed when the Publisher is
// closed, and one wrapping pubsub.ErrInvalidOption when Config.Publisher
// is nil.
//
// Any number of relays may run at once, in this process (call Run several
// times) and in others, on one table: each message is published by one of
// them, except that a relay that stops between a Publish and marking its
// rows, or that lost its lease (Config.Lease) while publishing, leaves them
// to be published again. Per topic and key, a relay publishes a message
// only after every message of that key that committed before it was
// published (or rejected), and never while an earlier one is held by
// another relay.
//
// A relay is woken at once by Publish through the same Outbox, and
// otherwise looks for new rows every Config.PollInterval. After a failed
// Publish or a database error it backs off (Config.Backoff up to
// Config.MaxBackoff), logs at Warn, and tells Observer.OnRelayed. It also
// deletes rows published more than Config.Retention ago.
func (o *Outbox) Run(ctx context.Context) error {
	if o.cfg.Publisher == nil {
		return fmt.Errorf("outbox: %w: Config.Publisher is nil; Run needs one", pubsub.ErrInvalidOption)
	}
	r := &relay{o: o, cfg: &o.cfg, wake: o.addWaker()}
	defer o.removeWaker(r.wake)
	return r.run(ctx)
}

type relay struct {
	o    *Outbox
	cfg  *Config
	wake chan struct{}

	failures    int  // consecutive failed cycles
	busy        bool // the last cycle claimed rows: claim without probing first
	nextCleanup time.Time
	nextStats   time.Time
}

// result is what one cycle did.
type result struct {
	claimed, published, failed, rejected int
}

func (r *relay) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	repoll := firstRepoll // next quick re-poll delay; 0: none
	for {
		res, err := r.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, pubsub.ErrClosed) {
			return fmt.Errorf("outbox: relay stops: %w", err)
		}
		r.maintain(ctx)

		var wait time.Duration
		wakeable := true
		switch {
		case err != nil || res.failed > 0:
			r.failures++
			wait, wakeable = r.backoff(), false
		case res.claimed >= r.cfg.BatchSize && res.published+res.rejected > 0:
			r.failures = 0
			continue // more may be waiting
		case res.claimed > 0:
			// A partial batch: let more rows gather for a moment, then
			// re-poll quickly.
			r.failures = 0
			repoll, wait, wakeable = firstRepoll, linger, false
		case repoll > 0:
			wait, repoll = repoll, 2*repoll
			if repoll > r.cfg.PollInterval {
				repoll = 0
			}
		default:
			wait = r.cfg.PollInterval
		}
		timer.Reset(wait)
		wakeCh := r.wake
		if !wakeable {
			wakeCh = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-wakeCh:
			repoll = firstRepoll
			timer.Stop() // no stale tick after Stop or Reset (Go 1.23 timers)
		}
	}
}

// backoff is the delay after the current run of failures: Backoff doubled
// per failure after the first, up to MaxBackoff, with equal jitter.
func (r *relay) backoff() time.Duration {
	d := r.cfg.Backoff
	for i := 1; i < r.failures && d < r.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// cycle claims one batch, publishes it and settles it.
func (r *relay) cycle(ctx context.Context) (result, error) {
	var res result
	o := r.o
	if !r.busy {
		// Idle: a cheap read first, so that polling an empty table costs
		// no claim.
		ok, err := o.d.anyClaimable(ctx, o.db, o.t)
		if err != nil {
			return res, r.dbError(ctx, "look for pending rows", err)
		}
		if !ok {
			return res, nil
		}
	}
	b, err := o.d.claim(ctx, o.db, o.t, r.cfg.BatchSize, r.cfg.Lease)
	if err != nil {
		return res, r.dbError(ctx, "claim rows", err)
	}
	res.claimed = b.claimed()
	r.busy = res.claimed > 0
	rows := b.rows()
	if res.claimed == 0 {
		b.abandon()
		return res, nil
	}
	sent, rejected, perr := r.publish(ctx, rows, &res)
	if ctx.Err() != nil && len(sent) == 0 {
		b.abandon()
		return res, nil
	}
	for _, u := range b.undecodable() {
		res.rejected++
		rejected = append(rejected, u)
		r.cfg.Logger.Error("outbox relay: a row does not decode; it is marked failed and will not be published",
			"table", o.t.outbox, "row", u.id, "err", u.err)
	}
	// Rows published are marked even when ctx ended meanwhile, as long as
	// the lease holds (after that, another relay publishes them again).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Lease)
	defer cancel()
	if err := b.finish(fctx, sent, rejected, r.cfg.Retention == NoRetention); err != nil {
		// The rows stay pending: those published will be published again.
		return res, r.dbError(ctx, "mark published rows", err)
	}
	return res, perr
}

func (r *relay) dbError(ctx context.Context, what string, err error) error {
	if ctx.Err() == nil {
		r.cfg.Logger.Error("outbox relay: "+what, "table", r.o.t.outbox, "err", err)
	}
	return fmt.Errorf("outbox: %s: %w", what, err)
}

// publish publishes rows, grouped by topic (each topic's rows in id
// order), and returns the ids of the rows the broker accepted and those it
// rejected for good. It returns pubsub.ErrClosed (wrapped) when the
// publisher is closed.
func (r *relay) publish(ctx context.Context, rows []row, res *result) (sent []int64, rejected []rejection, err error) {
	var topics []string
	byTopic := map[string][]row{}
	for _, rw := range rows {
		if _, ok := byTopic[rw.topic]; !ok {
			topics = append(topics, rw.topic)
		}
		byTopic[rw.topic] = append(byTopic[rw.topic], rw)
	}
	for _, topic := range topics {
		trows := byTopic[topic]
		s, rj, perr := r.publishTopic(ctx, topic, trows, res)
		sent = append(sent, s...)
		rejected = append(rejected, rj...)
		if ctx.Err() != nil {
			return sent, rejected, ctx.Err()
		}
		if errors.Is(perr, pubsub.ErrClosed) {
			return sent, rejected, perr
		}
		if perr != nil && err == nil {
			err = perr
		}
	}
	return sent, rejected, err
}

// publishTopic publishes the rows of one topic in one Publish call; when
// the broker refuses the batch as invalid, it publishes them one at a time
// to find the ones it rejects.
func (r *relay) publishTopic(ctx context.Context, topic string, rows []row, res *result) (sent []int64, rejected []rejection, err error) {
	msgs := make([]*pubsub.Message, len(rows))
	for i, rw := range rows {
		msgs[i] = rw.msg
	}
	err = r.send(ctx, topic, msgs)
	if err != nil && ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	end := time.Now()
	var pe *pubsub.PublishError
	failed := len(rows)
	switch {
	case err == nil:
		for _, rw := range rows {
			sent = append(sent, rw.id)
			r.observe(ctx, topic, rw, end, Published, nil, res)
		}
		return sent, nil, nil
	case invalid(err):
		return r.publishEach(ctx, topic, rows, res)
	case errors.As(err, &pe) && len(pe.Failed) > 0 && len(pe.Failed) < len(rows):
		refused := map[int]bool{}
		for _, i := range pe.Failed {
			refused[i] = true
		}
		failed = len(refused)
		for i, rw := range rows {
			if refused[i] {
				r.observe(ctx, topic, rw, end, Failed, err, res)
				continue
			}
			sent = append(sent, rw.id)
			r.observe(ctx, topic, rw, end, Published, nil, res)
		}
	default:
		for _, rw := range rows {
			r.observe(ctx, topic, rw, end, Failed, err, res)
		}
	}
	r.cfg.Logger.Warn("outbox relay: publish failed; will retry", "topic", topic, "messages", len(rows), "failed", failed, "err", err)
	return sent, nil, err
}

// publishEach publishes rows one by one, after the broker refused them
// together as invalid. It stops at the first failure that is not a
// rejection, so that no later message of a key goes before an earlier one.
func (r *relay) publishEach(ctx context.Context, topic string, rows []row, res *result) (sent []int64, rejected []rejection, err error) {
	for i, rw := range rows {
		err = r.send(ctx, topic, []*pubsub.Message{rw.msg})
		if err != nil && ctx.Err() != nil {
			return sent, rejected, ctx.Err()
		}
		end := time.Now()
		switch {
		case err == nil:
			sent = append(sent, rw.id)
			r.observe(ctx, topic, rw, end, Published, nil, res)
		case invalid(err):
			rejected = append(rejected, rejection{id: rw.id, err: err.Error()})
			r.observe(ctx, topic, rw, end, Rejected, err, res)
			r.cfg.Logger.Error("outbox relay: the broker rejected a message; it is marked failed and will not be published",
				"topic", topic, "message_id", rw.msg.ID, "row", rw.id, "err", err)
		default:
			for _, rest := range rows[i:] {
				r.observe(ctx, topic, rest, end, Failed, err, res)
			}
			r.cfg.Logger.Warn("outbox relay: publish failed; will retry", "topic", topic, "messages", len(rows)-i, "err", err)
			return sent, rejected, err
		}
	}
	return sent, rejected, nil
}

// send is one Publish call, bounded by PublishTimeout.
func (r *relay) send(ctx context.Context, topic string, msgs []*pubsub.Message) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	return r.cfg.Publisher.Publish(ctx, topic, msgs...)
}

// invalid reports whether err says the broker will never take the message.
func invalid(err error) bool {
	return errors.Is(err, pubsub.ErrMessageTooLarge) || errors.Is(err, pubsub.ErrInvalidMessage) || errors.Is(err, pubsub.ErrInvalidTopic)
}

func (r *relay) observe(ctx context.Context, topic string, rw row, end time.Time, out Outcome, err error, res *result) {
	switch out {
	case Published:
		res.published++
	case Failed:
		res.failed++
	case Rejected:
		res.rejected++
	}
	if f := r.cfg.Observer.OnRelayed; f != nil {
		f(ctx, Relayed{Topic: topic, Message: rw.msg, Outcome: out, Lag: rw.age + end.Sub(rw.claimed), Err: err})
	}
}

// maintain deletes rows past retention and reports the pending rows, when
// they are due.
func (r *relay) maintain(ctx context.Context) {
	now := time.Now()
	o := r.o
	if r.cfg.Retention > 0 && !now.Before(r.nextCleanup) {
		r.nextCleanup = now.Add(r.cfg.cleanupInterval())
		cutoff := now.Add(-r.cfg.Retention)
		for range cleanupRounds {
			n, err := o.d.cleanup(ctx, o.db, o.t, cutoff, cleanupChunk)
			if err != nil {
				if ctx.Err() == nil {
					r.cfg.Logger.Error("outbox relay: delete published rows", "table", o.t.outbox, "err", err)
				}
				break
			}
			if n < cleanupChunk {
				break
			}
		}
	}
	if f := r.cfg.Observer.OnPending; f != nil && !now.Before(r.nextStats) {
		r.nextStats = now.Add(r.cfg.StatsInterval)
		p, err := o.d.pending(ctx, o.db, o.t)
		if err != nil {
			if ctx.Err() == nil {
				r.cfg.Logger.Error("outbox relay: count pending rows", "table", o.t.outbox, "err", err)
			}
			return
		}
		f(ctx, p)
	}
}

// sortRows sorts rows by id.
func sortRows(rows []row) {
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.id, b.id) })
}
