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
	// accepted (publishing again is safe under at-least-once delivery), and
	// a *PublishError says which were not where the broker tells.
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
// message) has it handed back untouched, not retried. Handlers of one
// subscription run concurrently, up to WithConcurrency.
type Handler func(ctx context.Context, msg *Message) error

// Middleware wraps a Handler, as net/http middleware wraps an http.Handler:
// it may act before and after calling next, change the context, or return
// without calling it. Give it with WithMiddleware.
type Middleware func(next Handler) Handler

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
	// Close, and while a Broker shuts down, ErrClosed.
	Subscribe(ctx context.Context, topic, group string, h Handler, opts ...SubscribeOption) (*Subscription, error)
	// Close shuts down every Subscription made by this Subscriber, as
	// Subscription.Close does, then releases its resources. It is idempotent.
	Close() error
}

// Broker is a Publisher and a Subscriber on one connection, with a graceful
// stop. transport.Open returns one; every Broker it returns is a *Client and
// also implements GroupCreator, GroupDeleter, DeadLetterAdmin, Pinger and
// GroupLister.
type Broker interface {
	Publisher
	Subscriber
	// Shutdown stops the broker in phases: it drains every Subscription
	// (no new deliveries; running handlers finish and their messages are
	// settled) while Publish still works, so that handlers that publish and
	// dead-lettering succeed; then it refuses new calls, waits for Publish
	// calls in progress, and closes the connections. If ctx ends first,
	// handlers still running have their messages handed back and Shutdown
	// returns ctx's error once the connections are closed. Afterwards every
	// call returns ErrClosed. Close is Shutdown bounded by the drain timeout
	// (WithDrainTimeout, default 30s).
	Shutdown(ctx context.Context) error
}

// GroupCreator creates consumer groups before their first Subscribe, so that
// messages published before any member runs are kept for them (a topic with
// no group keeps nothing, on every broker).
type GroupCreator interface {
	// CreateGroup creates group of topic if it does not exist yet; it is
	// idempotent and blocks until the broker has created it.
	CreateGroup(ctx context.Context, topic, group string) error
}

// GroupDeleter deletes consumer groups.
type GroupDeleter interface {
	// DeleteGroup deletes group of topic with the messages it holds, its
	// retry state and its dead letters. A group that does not exist returns
	// ErrNotFound. It blocks until the broker has deleted it. Close the
	// group's Subscriptions first: a member still running may create the
	// group again when it reconnects.
	DeleteGroup(ctx context.Context, topic, group string) error
}

// DeadLetterAdmin manages the dead letters of consumer groups. Each group of
// a topic has dead letters of its own: the messages its handlers gave up on,
// kept until replayed or purged, up to a limit each transport documents.
// Every method blocks until the broker answered and returns ErrNotFound for
// a group that does not exist.
type DeadLetterAdmin interface {
	// ListDeadLetters returns up to limit dead letters of group (limit <= 0:
	// all), oldest first, without removing them. Each carries its ID, key,
	// payload and metadata, and MetadataDeadLetterReason,
	// MetadataDeadLetterTime, MetadataOriginalTopic, MetadataGroup and
	// MetadataAttempts.
	ListDeadLetters(ctx context.Context, topic, group string, limit int) ([]*Message, error)
	// ReplayDeadLetters sends the dead letters with the given IDs (all of
	// them when none is given) back to group, and to no other group, without
	// their dead-letter metadata; their next delivery has Attempt 1. It
	// returns how many it sent back. IDs that are not there are skipped.
	ReplayDeadLetters(ctx context.Context, topic, group string, ids ...string) (int, error)
	// PurgeDeadLetters deletes the dead letters with the given IDs (all of
	// them when none is given) and returns how many it deleted.
	PurgeDeadLetters(ctx context.Context, topic, group string, ids ...string) (int, error)
}

// Pinger reports whether a broker is ready: connected and able to publish.
// Services use it for readiness probes.
type Pinger interface {
	// Ping returns nil when the broker is ready, or an error saying why not
	// (ErrClosed after Close). It blocks at most until ctx ends.
	Ping(ctx context.Context) error
}

// GroupLister lists the consumer groups of a topic, for operators (the
// switchyard command line's "groups list"). Every *Client implements it;
// transports that cannot list groups return an error wrapping
// errors.ErrUnsupported, and each transport documents what it can tell.
type GroupLister interface {
	// ListGroups returns the groups of topic, sorted by name, with their
	// backlog and dead-letter counts where the broker can tell. A topic the
	// broker does not know returns ErrNotFound; a known topic without groups
	// an empty list. It blocks until the broker answered.
	ListGroups(ctx context.Context, topic string) ([]GroupInfo, error)
}

// GroupInfo is what ListGroups tells of one consumer group. A count the
// broker cannot tell is negative (-1); each transport documents which
// counts it gives.
type GroupInfo struct {
	// Name is the group's name.
	Name string
	// Backlog is how many messages the group holds that no handler has
	// finished with: waiting, in flight, and waiting out a retry's backoff.
	Backlog int
	// DeadLetters is how many dead letters the group holds.
	DeadLetters int
}
