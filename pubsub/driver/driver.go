// Package driver is the interface between Switchyard's portable layer
// (package pubsub) and its transports. Applications never use it: they
// write against package pubsub and open brokers with transport.Open.
//
// A transport implements Broker, Subscription and Delivery with broker I/O
// only: send a validated batch, receive, ack, retry after a delay, release
// untouched, store dead letters, list/replay/purge them, create and delete
// groups, ping. Everything else (name and message validation, ID
// assignment, the closed state, concurrency, retries and their backoff,
// attempt counting, the dead-letter policy, shutdown phases, middleware and
// observers) lives once in package pubsub, which wraps a Broker in a
// *pubsub.Client. Drivers do not retry on their own behalf beyond hiding a
// reconnection, and do not log except through the logger they are given.
//
// The design follows gocloud.dev's pubsub/driver: a driver package that
// users never read, its own Message type, and a portable type around it.
package driver

import (
	"context"
	"log/slog"
	"time"
)

// Message is a message as drivers see it. It mirrors pubsub.Message field
// for field, so that the portable layer converts pointers between the two
// without copying; see pubsub.Message for what each field means.
type Message struct {
	ID       string
	Key      string
	Metadata map[string]string
	Payload  []byte
	Attempt  int
}

// Broker is one transport connection. Every method is called concurrently
// with the others, except Close, which the portable layer calls once, after
// every Subscription it opened was closed. Names and messages reaching a
// Broker have passed pubsub's validation and the Broker's own
// ValidateNames and CheckMessage.
type Broker interface {
	// ValidateNames reports why the broker cannot use topic, or group when
	// it is not empty, beyond pubsub's rules (letters, digits, "._-", 1 to
	// 200 bytes), with an error wrapping ErrInvalidTopic or ErrInvalidGroup;
	// nil when it can. It does no I/O.
	ValidateNames(topic, group string) error
	// CheckMessage reports why the broker cannot carry m, with an error
	// wrapping ErrInvalidMessage or ErrMessageTooLarge (saying which limit),
	// or nil. m.ID may still be empty: IDs are set after every message of a
	// batch passed. It does no I/O and must not modify m.
	CheckMessage(m *Message) error
	// SendBatch publishes msgs to topic and returns nil only once the
	// broker durably accepted every one of them. Messages are checked and
	// have IDs; the driver must neither modify them nor keep them after it
	// returns. When it can tell which messages were not accepted, it
	// returns a *BatchError. Context errors come back unwrapped.
	SendBatch(ctx context.Context, topic string, msgs []*Message) error
	// CreateGroup creates group of topic if it does not exist, so that it
	// keeps the topic's messages from now on. Idempotent.
	CreateGroup(ctx context.Context, topic, group string) error
	// DeleteGroup deletes group of topic with its retry state and dead
	// letters. Messages it held are gone. Deleting a group that does not
	// exist returns an error wrapping ErrNotFound.
	DeleteGroup(ctx context.Context, topic, group string) error
	// Subscribe creates group of topic if it does not exist and starts
	// receiving its messages for one member. Transient broker errors (a
	// queue still starting) are retried, within ctx, not returned.
	Subscribe(ctx context.Context, topic, group string, cfg SubscribeConfig) (Subscription, error)
	DeadLetters
	// Ping returns nil when the broker is reachable and able to publish,
	// or an error saying why not. It blocks at most until ctx ends.
	Ping(ctx context.Context) error
	// Close flushes what the driver buffered for sending and closes its
	// connections. SendBatch calls still running fail.
	Close() error
	// As sets i to a driver-specific value (for example the underlying
	// client) when i is a pointer to a type the driver documents, and
	// reports whether it did.
	As(i any) bool
}

// DeadLetters is the dead-letter store of every group: each (topic, group)
// has dead letters of its own, bounded by a limit that the transport
// documents, kept as durably as the broker keeps messages.
type DeadLetters interface {
	// ListDeadLetters returns up to limit dead letters of the group, oldest
	// first, without removing them. Unknown groups return an error
	// wrapping ErrNotFound.
	ListDeadLetters(ctx context.Context, topic, group string, limit int) ([]*Message, error)
	// ReplayDeadLetters moves the dead letters with the given IDs (all of
	// them when ids is empty) back to the group, and to no other group, as
	// Revive makes them: their next delivery has Attempt 1. It returns how
	// many it moved; IDs not found are not an error.
	ReplayDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error)
	// PurgeDeadLetters deletes the dead letters with the given IDs (all of
	// them when ids is empty) and returns how many it deleted.
	PurgeDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error)
}

// SubscribeConfig is what a driver needs to know of a subscription.
type SubscribeConfig struct {
	// Concurrency is how many handlers run at once. Drivers size what they
	// fetch ahead from it (about twice as much), so that closing hands
	// little back.
	Concurrency int
	// MaxAttempts is the subscription's WithMaxAttempts.
	MaxAttempts int
	// BackoffInitial is the retry delay after a first failure (before
	// jitter); later ones double up to BackoffMax. Drivers that hand the
	// backoff to the broker (a retry policy) configure it from these two.
	BackoffInitial time.Duration
	// BackoffMax is the longest retry delay the subscription asks for.
	BackoffMax time.Duration
	// Logger is the subscription's logger, for the driver's own events
	// (a consumer that reconnects). Never nil.
	Logger *slog.Logger
}

// Subscription is one member's source of deliveries.
type Subscription interface {
	// Receive blocks until a delivery is available, ctx ends, or the
	// subscription is closed (ErrClosed). It hides reconnections; any other
	// error is logged by the portable layer, which calls again after a
	// pause. A call that returns an error has taken nothing off the broker.
	// It is called from several goroutines at once.
	Receive(ctx context.Context) (Delivery, error)
	// Close stops receiving and releases every delivery not settled yet
	// as Delivery.Release does. The portable layer calls it once, after
	// its workers stopped; settling a delivery afterwards returns an error
	// wrapping ErrClosed and has no effect.
	Close() error
}

// Delivery is one delivered message awaiting settlement. The portable layer
// calls exactly one of Ack, Retry, Release and DeadLetter successfully,
// once; after a failed DeadLetter it may call DeadLetter again or Retry.
type Delivery interface {
	// Message returns the delivered message with Attempt set: 1 plus the
	// handler runs recorded as failed (Retry's attempt), plus one for a
	// delivery the broker took back from a member that died holding it
	// where the broker counts that. The portable layer calls it once and
	// owns the result.
	Message() *Message
	// Ack removes the message from the group for good.
	Ack(ctx context.Context) error
	// Retry hands the message back to be delivered to the group again
	// after delay, with Attempt set to attempt. Drivers keep the delay and
	// the count on the broker where they can, so both survive a crash.
	Retry(ctx context.Context, delay time.Duration, attempt int) error
	// Release hands the message back untouched: it is delivered again as
	// soon as possible, with the same Attempt where the broker allows.
	Release(ctx context.Context) error
	// DeadLetter stores dl, the message with its dead-letter metadata, in
	// the group's dead letters, then removes the message from the group.
	// If it fails, the message stays delivered and unsettled.
	DeadLetter(ctx context.Context, dl *Message) error
}
