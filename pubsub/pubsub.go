package pubsub

import "context"

// Publisher sends messages to topics.
//
// Implementations are safe for concurrent use; concurrent calls are pipelined
// by the transport, not serialized on one broker round-trip each.
type Publisher interface {
	// Publish sends msgs to topic and blocks until the broker durably accepted
	// every one of them, ctx is done, or an error occurs. It returns nil only
	// after every message was accepted; on error, any subset may have been
	// accepted (publishing again is safe under at-least-once delivery).
	//
	// Every message and the topic name are validated before any I/O: an
	// invalid topic returns ErrInvalidTopic, a nil message ErrInvalidMessage,
	// a message over the transport's size limit ErrMessageTooLarge, and then
	// nothing is sent. Publish sets ID on messages whose ID is empty. After
	// Close it returns ErrClosed. Context errors are returned unwrapped.
	Publish(ctx context.Context, topic string, msgs ...*Message) error
	// Close releases the publisher's resources. It is idempotent.
	Close() error
}

// Handler processes one delivered message. Returning nil acknowledges it;
// returning an error (or panicking) has it redelivered after a backoff, up to
// the subscription's maximum attempts, after which it is dead-lettered.
// Returning Permanent(err) dead-letters it at once.
//
// ctx is cancelled when the subscription is stopped without waiting for the
// handler (Shutdown's deadline passed); the message is then handed back for
// redelivery, possibly to another member while this handler still runs, so
// handlers should honour ctx. A handler that returns an error wrapping
// ErrClosed while its subscription is stopping (it could not take the
// message) likewise has it handed back, not retried. Handlers of one
// subscription run concurrently, up to WithConcurrency.
type Handler func(ctx context.Context, msg *Message) error

// Subscriber joins consumer groups.
//
// Implementations are safe for concurrent use.
type Subscriber interface {
	// Subscribe joins consumer group group of topic and runs h for each
	// delivered message in the background until the Subscription is closed or
	// ctx is done (which shuts it down as Close does). It blocks only while it
	// sets up the group (creating it on first use) and returns once delivery
	// has started.
	//
	// Every group of a topic receives every message published after the group
	// was first created; the Subscriptions of one group, in this process or
	// others, share its messages. Invalid names return ErrInvalidTopic or
	// ErrInvalidGroup, bad options ErrInvalidOption, before any I/O; after
	// Close, ErrClosed.
	Subscribe(ctx context.Context, topic, group string, h Handler, opts ...SubscribeOption) (*Subscription, error)
	// Close shuts down every Subscription made by this Subscriber, as
	// Subscription.Close does, then releases its resources. It is idempotent.
	Close() error
}

// Broker is a Publisher and a Subscriber on one connection. transport.Open
// returns one.
type Broker interface {
	Publisher
	Subscriber
}

// GroupCreator is implemented by brokers that can create a consumer group
// before its first Subscribe, so that messages published before any member
// runs are kept for it. Every transport in this module implements it.
type GroupCreator interface {
	// CreateGroup creates group of topic if it does not exist yet; it is
	// idempotent and blocks until the broker has created it.
	CreateGroup(ctx context.Context, topic, group string) error
}

// Pinger is implemented by brokers that can report whether they are ready:
// connected to the broker and able to publish. Every transport in this
// module implements it; services use it for readiness probes.
type Pinger interface {
	// Ping returns nil when the broker is ready, or an error saying why not
	// (pubsub.ErrClosed after Close). It blocks at most until ctx ends.
	Ping(ctx context.Context) error
}
