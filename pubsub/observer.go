package pubsub

import (
	"context"
	"time"
)

// Observer is told what the delivery loop does with each message, by the
// loop itself, so metrics and traces built on it never guess. Set the
// callbacks you need; nil ones are skipped. Callbacks run on the loop's
// goroutines, concurrently for concurrent deliveries: they must be safe for
// concurrent use and quick. Give observers with WithObserver, to a broker or
// a subscription; the loop calls them in the order given, a broker's first.
//
// The shape follows gRPC's stats.Handler: OnReceive may return a context
// (to carry a span, say) that the handler and OnSettle get.
type Observer struct {
	// OnReceive is called when a delivery is about to be handled, before
	// middleware and handler; the context it returns is passed to them and
	// to OnSettle. Deliveries that are settled without running the handler
	// (handed back during a stop; dead-lettered on arrival for an Attempt
	// past WithMaxAttempts) get OnSettle only.
	OnReceive func(ctx context.Context, d Delivery) context.Context
	// OnSettle is called with each outcome of a delivery. Every delivery
	// ends with exactly one outcome other than OutcomeParked; a parked one
	// first reports OutcomeParked, then OutcomeDeadLettered once its dead
	// letter is stored, or OutcomeRetried when its subscription stopped
	// first.
	OnSettle func(ctx context.Context, s Settlement)
}

// Delivery describes a delivery to Observer.OnReceive.
type Delivery struct {
	Topic, Group string
	// Message is the message about to be handled, with Attempt set. It is
	// the handler's: observers must not modify it.
	Message *Message
}

// Settlement describes an outcome of a delivery to Observer.OnSettle.
type Settlement struct {
	Topic, Group string
	// Message is the delivered message, as the handler left it: observers
	// must not modify it.
	Message *Message
	// Outcome is what the loop did with the message.
	Outcome Outcome
	// Delay is the backoff before redelivery (OutcomeRetried).
	Delay time.Duration
	// Cause is why the message was not acked: the handler's error (a
	// *PanicError for a panic), or why it was dead-lettered on arrival.
	// Nil for OutcomeAcked, and for OutcomeReleased and OutcomeRetried when
	// a stopping subscription handed the message back.
	Cause error
	// Err is the broker's error, for OutcomeParked and OutcomeSettleFailed.
	Err error
	// Duration is how long the handler (with its middleware) ran; 0 when it
	// did not run.
	Duration time.Duration
}

// Outcome is what the delivery loop did with a delivered message.
type Outcome int

// Outcomes of a delivery.
const (
	// OutcomeAcked: the handler returned nil and the message was acked.
	OutcomeAcked Outcome = iota + 1
	// OutcomeRetried: the message was handed back with its Attempt
	// incremented, to be redelivered after Settlement.Delay: the handler
	// failed, or it was still running (or its dead letter was parked) when
	// Shutdown's deadline passed.
	OutcomeRetried
	// OutcomeDeadLettered: the message was stored in its group's dead
	// letters (or published to WithDeadLetter's topic) and acked.
	OutcomeDeadLettered
	// OutcomeReleased: the message was handed back untouched, its Attempt
	// unchanged, because its subscription was stopping.
	OutcomeReleased
	// OutcomeParked: the dead letter could not be stored; the loop keeps
	// the message and tries again with backoff, without running the handler.
	OutcomeParked
	// OutcomeSettleFailed: the broker did not take the ack, retry or
	// release; it redelivers the message by itself later (Attempt as the
	// broker counts it).
	OutcomeSettleFailed
)

var outcomeNames = [...]string{"", "acked", "retried", "dead_lettered", "released", "parked", "settle_failed"}

// String returns the outcome's name in snake case ("dead_lettered"), as
// metrics label it.
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}
