package outbox

import (
	"context"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Observer is told what relays and Idempotent handlers do, by the relay or
// handler itself, so metrics built on it never guess. Set the callbacks you
// need; nil ones are skipped. Callbacks run on relay and handler
// goroutines, concurrently when several run: they must be safe for
// concurrent use and quick. Package oteloutbox builds OpenTelemetry metrics
// on it.
type Observer struct {
	// OnRelayed is called for each message a relay passed to Publish, once
	// Publish returned, with the outcome.
	OnRelayed func(ctx context.Context, r Relayed)
	// OnPending is called by each running relay every
	// Config.StatsInterval with the pending rows of the table.
	OnPending func(ctx context.Context, p Pending)
	// OnDuplicate is called by an Idempotent handler for each delivery it
	// acknowledged without running the handler, because its group had
	// recorded the message ID already.
	OnDuplicate func(ctx context.Context, group string, msg *pubsub.Message)
}

// Relayed describes one message a relay published, or tried to.
type Relayed struct {
	// Topic is the topic it was published to.
	Topic string
	// Message is the message; observers must not modify it.
	Message *pubsub.Message
	// Outcome is what became of it.
	Outcome Outcome
	// Lag is the time from storing the message (its row's insert, before
	// the transaction committed) to the end of the Publish call.
	Lag time.Duration
	// Err is the Publish error (Failed), or why the broker rejected the
	// message (Rejected).
	Err error
}

// Outcome is what a relay did with a message.
type Outcome int

// Outcomes of a relayed message.
const (
	// Published: Publish returned nil (or a *pubsub.PublishError that did
	// not name it); the row is then marked published. If marking fails,
	// the message is published again later, and reported again.
	Published Outcome = iota + 1
	// Failed: the broker did not accept it; the row stays pending and is
	// published again after a backoff, before any later message of its key.
	Failed
	// Rejected: the broker refused it as invalid (pubsub.ErrMessageTooLarge,
	// ErrInvalidMessage or ErrInvalidTopic), even when published alone;
	// its row is marked failed with the reason and never published. Later
	// messages of its key are published.
	Rejected
)

var outcomeNames = [...]string{"", "published", "failed", "rejected"}

// String returns the outcome's name ("published", "failed", "rejected").
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Pending describes the rows waiting in an outbox table.
type Pending struct {
	// Rows is how many rows are waiting to be published: committed, neither
	// published nor rejected (those claimed by a relay included).
	Rows int64
	// OldestAge is how long ago the oldest of them was stored; 0 when there
	// are none.
	OldestAge time.Duration
}
