// Package pubsub is Switchyard's portable publish/subscribe API. Services
// write against it once and pick the broker by configuration
// (transport.Open with a mem://, amqp://, gcppubsub:// or nats:// URL); every
// broker it returns is a *Client with the same semantics.
//
// # Model
//
// A Publisher sends Messages to named topics. A Subscriber joins a consumer
// group of a topic with a Handler:
//
//   - every group of a topic receives every message published after the
//     group was created (fan-out); create groups ahead with CreateGroup;
//   - the members of one group (Subscriptions with the same topic and group,
//     in one process or many) share its messages, each handled by one member
//     at a time (competing consumers);
//   - a group is durable: messages published while no member runs wait for
//     the next one (memory: while the process lives).
//
// # Delivery
//
// Delivery is at least once: handlers must be idempotent. A message is acked
// only after its handler returned nil. A handler error or panic has the
// message redelivered after a backoff (WithBackoff: exponential from 100ms to
// 30s by default, with jitter); messages waiting out a backoff do not hold
// up the others. Message.Attempt counts the handler runs: 1 on the first
// delivery, one more after each failure (and at most one more for a run cut
// off by a crash or by Shutdown's deadline); a message handed back untouched
// (fetched ahead but not handled when its member stopped) keeps its Attempt.
//
// # Dead letters
//
// After WithMaxAttempts (default 5) runs, or at once when the handler
// returns Permanent(err), the message is stored in the dead letters of its
// own group, with MetadataDeadLetterReason, MetadataDeadLetterTime,
// MetadataOriginalTopic, MetadataGroup and MetadataAttempts set, and acked.
// No other group sees it. An operator lists a group's dead letters, replays
// them to that group (Attempt starts again at 1) or purges them with
// DeadLetterAdmin (every broker implements it; so does the switchyard
// command line). Each transport documents how many dead letters a group
// keeps. If a dead letter cannot be stored, the message is parked: the
// member keeps it and tries again with backoff, and its handler never runs
// it again; a handler is never given a message whose Attempt is past
// WithMaxAttempts. WithDeadLetter(topic) publishes dead letters to a topic
// of your own instead.
//
// Publish returns nil only after the broker durably accepted every message;
// a *PublishError says which were not, where the broker tells.
//
// # Shutdown
//
// Subscription.Close stops new deliveries and waits (WithDrainTimeout,
// default 30s) for in-flight handlers and settles their messages; Shutdown
// takes the bound from a context. When the bound passes, the messages of
// handlers still running are handed back. Broker.Shutdown (and Close) goes
// in phases: it drains every subscription while Publish still works, so
// handlers that publish and dead-lettering succeed; then it waits for
// publishes in progress and closes the connections. Calls after that return
// ErrClosed.
//
// # Hooks
//
// WithMiddleware wraps handlers (func(Handler) Handler); WithObserver is told
// the real outcome of every delivery by the loop itself (acked, retried
// with its delay, dead-lettered, released, parked, settle failed, with the
// handler's duration); WithPublishMiddleware wraps Publish. Given to a
// broker they apply to all its subscriptions. Package otelpubsub builds
// OpenTelemetry traces and metrics on them.
//
// # Typed topics
//
// NewTopic[T] encodes values with a Codec (JSON by default) on Publish and
// decodes them for the handler; a payload that does not decode is
// dead-lettered at once.
//
// # Transports
//
// The policy above lives once, here, in Client; transports implement the
// small interface of package pubsub/driver (send a batch, receive, ack,
// retry after a delay, release, store and manage dead letters, groups,
// ping). Applications never need that package.
package pubsub
