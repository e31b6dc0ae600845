package pubsub

import (
	"context"
	"time"
)

// This file is the interface between the portable delivery loop and the
// transports. Applications do not need it; transports implement Receiver and
// Delivery and call StartSubscription from their Subscribe.

// Receiver is a transport's source of deliveries for one subscription.
//
// Receive is called from Concurrency goroutines at once; Close is called once,
// after the subscription stopped receiving.
type Receiver interface {
	// Receive blocks until a delivery is available, ctx is done, or the
	// receiver is closed. It hides transient broker failures (reconnecting
	// internally) where it can; any error it returns other than ErrClosed or
	// ctx's error is logged and Receive is called again after a pause. A call
	// that returns an error must not have taken a message off the broker.
	Receive(ctx context.Context) (Delivery, error)
	// Close stops delivery and hands every unsettled delivery back to the
	// broker for redelivery. Settling a delivery after Close returns an error
	// and has no effect.
	Close() error
}

// Delivery is one delivered message awaiting settlement. Exactly one of Ack
// and Retry is called, once.
type Delivery interface {
	// Message returns a new copy of the delivered message, with Attempt set,
	// on each call.
	Message() *Message
	// Ack removes the message from the group: it is not delivered again.
	Ack(ctx context.Context) error
	// Retry hands the message back for redelivery to the group after delay,
	// with Attempt incremented. Transports that can keep the delay and the
	// count on the broker do so, so both survive a consumer crash.
	Retry(ctx context.Context, delay time.Duration) error
}

// Backoff returns the delay before redelivering a message whose attempt
// number attempt (1-based) failed: BackoffInitial doubled for each attempt
// after the first, capped at BackoffMax, with equal jitter (uniform in [d/2, d]).
func (c SubscribeConfig) Backoff(attempt int) time.Duration {
	d := c.BackoffInitial
	for i := 1; i < attempt && d < c.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.BackoffMax)
	return d/2 + jitter(d/2)
}
