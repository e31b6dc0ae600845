// Package pubsub is Switchyard's portable publish/subscribe API. Services
// write against it once and pick the broker by configuration
// (transport.Open with a mem://, amqp:// or gcppubsub:// URL).
//
// # Model
//
// A Publisher sends Messages to named topics. A Subscriber joins a consumer
// group of a topic with a Handler:
//
//   - every group of a topic receives every message published after the
//     group was created (fan-out);
//   - the members of one group (Subscriptions with the same topic and group,
//     in one process or many) share its messages, each handled by one member
//     at a time (competing consumers);
//   - a group is durable: messages published while no member runs wait for
//     the next one (memory: while the process lives).
//
// # Delivery
//
// Delivery is at least once. A message is acknowledged only after its handler
// returned nil. A handler error or panic has the message redelivered after a
// backoff (WithBackoff: exponential from 100ms to 30s by default, with
// jitter), with Message.Attempt incremented. After WithMaxAttempts (default
// 5) attempts, or at once when the handler returns Permanent(err), the
// message is published to the dead-letter topic ("<topic>.dlq" by default,
// WithDeadLetter) with MetadataDeadLetterReason, MetadataOriginalTopic,
// MetadataGroup and MetadataAttempts set, and acknowledged on its topic. The
// dead-letter topic gets a group named like the source group, so that
// subscribing to it with that group name reads the dead letters. Handlers
// must be idempotent: a message may be delivered more than once.
//
// Publish returns nil only after the broker durably accepted every message.
//
// # Shutdown
//
// Subscription.Close stops new deliveries and waits (WithDrainTimeout,
// default 30s) for in-flight handlers; Shutdown takes the bound from a
// context. Messages whose handlers did not finish are redelivered. Closing a
// Broker closes its Subscriptions. Calls after Close return ErrClosed.
//
// # Typed topics
//
// NewTopic[T] encodes values with a Codec (JSON by default) on Publish and
// decodes them for the handler; a payload that does not decode is
// dead-lettered at once.
//
// # Transports
//
// The retry, backoff, dead-letter, concurrency and drain policy lives once,
// here, in the delivery loop (StartSubscription); transports provide the
// broker's primitives through Receiver and Delivery. Applications do not
// need those two interfaces.
package pubsub
