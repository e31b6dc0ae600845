// Package reports publishes what consumer groups do with each delivery, as
// events.DeliveryReport on delivery.reports, so that another process (the
// console) can show a message's fan-out as it happens: which groups acked
// it, retried it, dead-lettered it. The outcomes come from the delivery
// loop itself, through a pubsub.Observer, never re-derived.
package reports

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/pubsub"
)

// QueueSize is how many reports wait for publishing at most; more are
// dropped (and counted) rather than slowing the delivery loop down.
const QueueSize = 1024

// publishTimeout bounds each report's publish.
const publishTimeout = 5 * time.Second

// maxPayload is how many bytes of a payload a report carries.
const maxPayload = 2048

// Reporter turns the outcomes of deliveries on some topics into
// DeliveryReports and publishes them. Give its Option to the brokers (or
// subscriptions) to watch and run Run with a publisher. Reports are best
// effort: when the queue is full or a publish fails, the report is dropped,
// counted and logged; the groups' own state stays the record. A Reporter
// is safe for concurrent use.
type Reporter struct {
	name    string
	topic   pubsub.Topic[events.DeliveryReport]
	watched map[string]bool
	log     *slog.Logger
	q       chan events.DeliveryReport
	dropped atomic.Int64
}

// New returns a Reporter of the deliveries on topics (full names, with
// their namespace), publishing to ns's delivery.reports and naming itself
// name (a service instance, say) in the reports. log gets the drops
// (default slog.Default()).
func New(ns events.Namespace, name string, log *slog.Logger, topics ...string) *Reporter {
	if log == nil {
		log = slog.Default()
	}
	r := &Reporter{name: name, topic: ns.DeliveryReports(), watched: map[string]bool{}, log: log, q: make(chan events.DeliveryReport, QueueSize)}
	for _, t := range topics {
		r.watched[t] = true
	}
	return r
}

// Option returns the broker option that reports the deliveries of the
// watched topics (a pubsub.Observer); it also works as a SubscribeOption.
func (r *Reporter) Option() pubsub.Option {
	return pubsub.WithObserver(pubsub.Observer{OnSettle: r.onSettle})
}

// Dropped returns how many reports were dropped so far.
func (r *Reporter) Dropped() int64 { return r.dropped.Load() }

func (r *Reporter) onSettle(_ context.Context, st pubsub.Settlement) {
	if !r.watched[st.Topic] || st.Message == nil {
		return
	}
	rep := events.DeliveryReport{
		Topic: st.Topic, Group: st.Group, MessageID: st.Message.ID, Key: st.Message.Key,
		Outcome: st.Outcome.String(), Attempt: st.Message.Attempt, DelayMillis: st.Delay.Milliseconds(),
		Payload: text(st.Message.Payload), At: time.Now().UTC(), Reporter: r.name,
	}
	if st.Cause != nil {
		rep.Cause = st.Cause.Error()
	}
	select {
	case r.q <- rep:
	default:
		r.drop(rep, "the report queue is full")
	}
}

func (r *Reporter) drop(rep events.DeliveryReport, why string) {
	n := r.dropped.Add(1)
	r.log.Warn("delivery report dropped", "why", why, "topic", rep.Topic, "group", rep.Group, "id", rep.MessageID, "outcome", rep.Outcome, "dropped", n)
}

// Run publishes the queued reports with p, in order, until ctx ends. Call
// it once.
func (r *Reporter) Run(ctx context.Context, p pubsub.Publisher) {
	for {
		select {
		case <-ctx.Done():
			return
		case rep := <-r.q:
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			err := r.topic.Publish(pctx, p, rep, pubsub.WithKey(rep.MessageID))
			cancel()
			if err != nil && ctx.Err() == nil {
				r.drop(rep, err.Error())
			}
		}
	}
}

func text(b []byte) string {
	if len(b) > maxPayload {
		b = b[:maxPayload]
	}
	if !utf8.Valid(b) {
		return ""
	}
	return string(b)
}
