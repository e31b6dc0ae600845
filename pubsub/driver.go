package pubsub

import (
	"context"
	"fmt"
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
		if d > c.BackoffMax/2 {
			d = c.BackoffMax // doubling would pass the max (or overflow)
			break
		}
		d *= 2
	}
	d = min(d, c.BackoffMax)
	return d/2 + jitter(d/2)
}

// CheckBatch validates the messages of a Publish call for a transport before
// any I/O: none may be nil (ErrInvalidMessage), none may have a Size over
// maxBytes (ErrMessageTooLarge; maxBytes 0 means no limit), and check, when
// not nil, says why the transport cannot carry one (ErrInvalidMessage).
// Errors start with transport's name and say which message of the batch and
// which topic.
func CheckBatch(transport, topic string, msgs []*Message, maxBytes int, check func(*Message) error) error {
	for i, m := range msgs {
		where := fmt.Sprintf("%s: message %d of %d to %s", transport, i+1, len(msgs), topic)
		if m == nil {
			return fmt.Errorf("%s is nil: %w", where, ErrInvalidMessage)
		}
		if n := m.Size(); maxBytes > 0 && n > maxBytes {
			return fmt.Errorf("%s is %d bytes, over the limit of %d (max_message_bytes): %w", where, n, maxBytes, ErrMessageTooLarge)
		}
		if check != nil {
			if err := check(m); err != nil {
				return fmt.Errorf("%s: %s: %w", where, err, ErrInvalidMessage)
			}
		}
	}
	return nil
}

// AssignIDs sets a new ID (NewID) on every message whose ID is empty, as
// Publish promises.
func AssignIDs(msgs []*Message) {
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = NewID()
		}
	}
}
