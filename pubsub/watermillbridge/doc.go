// Package watermillbridge makes any Switchyard broker a watermill
// message.Publisher and message.Subscriber, so that existing watermill
// Routers, handlers and middleware run on Switchyard's transports with
// Switchyard's semantics (consumer groups, retries with backoff, dead
// letters). The package's tests run watermill's own Pub/Sub test suite
// (pubsub/tests.TestPubSub) through the bridge, with the features stated
// under Guarantees.
//
// # Mapping
//
// watermill's UUID is Message.ID, its Metadata is Metadata, its Payload is
// Payload. The metadata entry MetadataKey, when present on a published
// watermill message, becomes the Switchyard Key (and is removed from
// Metadata); on delivery the Key and the Attempt are set in metadata under
// MetadataKey and MetadataAttempt. A watermill message's context does not
// travel: on delivery, its context carries the values of the context given
// to Subscribe.
//
// # Consumer groups
//
// watermill's Subscribe names no group: a Subscriber joins the one group
// given to NewSubscriber, on every topic it subscribes to. Subscribers with
// the same group, in one process or many, share that group's messages;
// Subscribers with different groups each receive every message. A group
// keeps the messages published after it was created, whether a member runs
// or not, until they are acked: call SubscribeInitialize before publishing
// to a topic that nobody subscribed to yet, or those messages are lost.
//
// # Ack and Nack
//
// Each delivered message is sent on the channel that Subscribe returned and
// waits there for its Ack or Nack; a Subscription runs up to
// pubsub.WithConcurrency (default 10) of them at once. A message that is
// Acked is acked on the broker; one that is Nacked is retried with the
// subscription's backoff, and dead-lettered after its maximum attempts
// (pubsub.WithMaxAttempts, default 5), as a handler error would be. Its
// context is cancelled once it is settled. watermill's own Subscribers
// redeliver a Nacked message without limit; give NewSubscriber a large
// pubsub.WithMaxAttempts for that behaviour, and keep the backoff
// (pubsub.WithBackoff) short if a consumer Nacks to have a message back
// soon.
//
// # Closing
//
// When the Subscriber is closed, or the context given to Subscribe ends,
// the subscription stops taking messages and its channel is closed.
// Messages that were sent on the channel but neither Acked nor Nacked by
// then are Nacked by the bridge (an Ack after that returns false) and
// handed back to the broker untouched: their Attempt does not grow, and
// the group delivers them again, to this or another member. Their contexts
// are cancelled. Close returns once every channel is closed. So Close does
// not wait for messages being handled, as watermill's own Subscribers do
// not: a Router closed while its handlers run has their Acks ignored, and
// those messages come again.
//
// # Guarantees
//
// At-least-once delivery: a message may come again after a Nack, a Close
// or a crash, so handlers must be idempotent (watermill's
// ExactlyOnceDelivery: no). No order: messages without a Key come in no
// particular order, and a Nacked message comes after later ones
// (GuaranteedOrder: no); transports that order by Key (see their package
// docs) do so per Key only. A new group receives only messages published
// after it was created, and acked messages are gone: it is no log to replay
// (NewSubscriberReceivesOldMessages: no). The context of a published
// message is not delivered (ContextPreserved: no). Reconnecting after a
// broker outage is the transport's work (see its package doc); the bridge
// adds nothing to it.
package watermillbridge
