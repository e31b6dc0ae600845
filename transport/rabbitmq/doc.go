// Package rabbitmq is Switchyard's RabbitMQ transport: a pubsub.Broker on
// AMQP 0-9-1, safe by default (durable topology, persistent messages,
// publisher confirms), as fast as the raw client, and surviving broker
// restarts without an application restart.
//
// Open it with transport.Open(ctx, "amqp://guest:guest@localhost:5672/"), or
// with OpenURL or New and a Config. A Broker holds two connections, one for
// publishing and one for consuming, as RabbitMQ recommends (flow control
// that blocks a publishing connection then never stalls acknowledgements).
// Both are re-established by the Broker when lost.
//
// # URL
//
//	amqp://USER:PASSWORD@HOST:PORT/VHOST?QUERY
//	amqps://USER:PASSWORD@HOST:PORT/VHOST?QUERY
//
// Port defaults to 5672 (amqps: 5671), vhost to "/"; percent-encode reserved
// characters in the user and password. The query parameters, all optional,
// with their defaults:
//
//	prefetch=512            consumer prefetch per Subscription (Config.Prefetch)
//	queue_type=quorum       quorum or classic (Config.QueueType)
//	confirm_timeout=30s     how long Publish waits for the broker (Config.ConfirmTimeout)
//	connect_timeout=10s     bound on each connection attempt (Config.ConnectTimeout)
//	max_message_bytes=134217728  largest message Publish accepts (Config.MaxMessageBytes)
//
// amqp091-go's own parameters are passed on: heartbeat (seconds, default
// 10), channel_max, auth_mechanism, and for amqps cacertfile, certfile,
// keyfile and server_name_indication (without cacertfile the system roots
// are used). Any other parameter is an error. Errors and logs name the broker
// by host:port; the password never appears in them.
//
// # Topic mapping
//
// The topology is plain AMQP, so that clients in other languages can publish
// to and consume from Switchyard topics:
//
//   - A topic is a durable fanout exchange named after the topic. Publish
//     declares it on first use (once per connection). Topics beginning with
//     "amq." are reserved by RabbitMQ and refused with
//     pubsub.ErrInvalidTopic.
//   - A consumer group is a durable queue named "<topic>.<group>", bound to
//     the topic's exchange, of the configured type: quorum by default
//     (x-queue-type "quorum"), classic with queue_type=classic. CreateGroup
//     and Subscribe declare it. A topic with no group yet has no queue bound,
//     and RabbitMQ drops what is published to it (the publish is still
//     confirmed); create groups before publishing with CreateGroup.
//   - Retries wait in queues "<topic>.<group>.retry.<ms>", one per delay
//     bucket (see Delivery semantics), with x-message-ttl <ms>,
//     x-dead-letter-exchange "" and x-dead-letter-routing-key "<topic>.<group>"
//     (expired messages go back to the group's queue), x-expires <ms> plus 10
//     minutes (an unused retry queue deletes itself; a used one is declared
//     again at least every minute, which renews it), and for quorum queues
//     x-dead-letter-strategy "at-least-once" with x-overflow "reject-publish".
//   - Dead letters are published to the topic "<topic>.dlq" (or the one given
//     with pubsub.WithDeadLetter) like any message; the subscription creates
//     the group of the same name there ("<topic>.dlq.<group>") so that they
//     are kept.
//   - Names longer than AMQP's 255 bytes (a long topic and a long group) are
//     cut to 238 bytes followed by "~" and 16 hex digits of the SHA-256 of
//     the full name. The dots make some names ambiguous: topic "a" with group
//     "b.c" and topic "a.b" with group "c" share the queue "a.b.c"; choose
//     names that avoid this.
//
// A message is an AMQP message with delivery mode 2 (persistent):
//
//   - Message.ID is the message_id property.
//   - Message.Payload is the body, as it is.
//   - Message.Metadata entries are string headers, except "content-type",
//     which is the content_type property (typed topics set it from their
//     codec; an empty value stays a header); on delivery content_type comes
//     back as metadata "content-type". Header values of other types, from
//     other clients, are formatted as text.
//   - CloudEvents attributes (metadata "ce-id", "ce-type", ..., set by typed
//     topics) are headers "cloudEvents:id", "cloudEvents:type", ..., the
//     CloudEvents AMQP binding, so CloudEvents SDKs read them; metadata may
//     not use the "cloudEvents:" prefix itself.
//   - Message.Key is the header "x-switchyard-key" (absent when empty).
//   - The header "x-switchyard-attempt" is set on retry copies (see below).
//     Metadata may not use it, "x-switchyard-key", nor the headers RabbitMQ
//     sets ("x-delivery-count", "x-death", "x-first-death-*",
//     "x-last-death-*"); Publish refuses such messages with
//     pubsub.ErrInvalidMessage, as it does IDs, metadata keys and content
//     types longer than 255 bytes.
//
// # Delivery semantics
//
// Publish returns nil only after RabbitMQ confirmed every message (publisher
// confirms are always on): for a quorum queue, after a majority of its
// replicas wrote it to disk. All publishes share one channel in confirm mode
// and each Publish call waits on the deferred confirmations of its own
// messages, so concurrent calls and the messages of a batch are pipelined;
// no lock is held while waiting. While the connection is down, Publish waits
// for it to come back; a message whose confirmation was lost with the
// connection is published again on the next one (so it may arrive twice),
// never reported as sent. All of this is bounded by the caller's context and
// ConfirmTimeout (default 30s), after which Publish returns an error (wrapping
// context.DeadlineExceeded for the timeout) and any subset of the messages
// may have been accepted. While RabbitMQ blocks the publishing connection
// (a memory or disk alarm), Publish waits before sending, bounded the same
// way. A broker nack, or the broker closing the channel over a message (for
// example one over its max_message_size, which also fails the other
// publishes in flight on that channel), is an error.
//
// Each Subscription consumes on a channel of its own with a prefetch of
// max(Config.Prefetch, WithConcurrency). Delivery is at least once: a
// message is acknowledged after its handler returned nil (or after it was
// dead-lettered); anything unacknowledged when a consumer's channel or
// connection closes is requeued by RabbitMQ and delivered again, to this
// member after it reconnects or to another member of the group.
// Subscription.Close closes the channel, so RabbitMQ requeues every message
// not settled yet; settling after that returns an error wrapping
// pubsub.ErrClosed. RabbitMQ closes a consumer's channel when one of its
// messages stays unacknowledged longer than the server's consumer_timeout
// (30 minutes by default): a handler that runs longer has its message
// redelivered, and its channel's other messages with it.
//
// Retries happen on the broker: to retry after a delay, the subscription
// publishes a copy of the message (same message_id, properties, headers and
// body, with x-switchyard-attempt set to the next attempt) to the group's
// retry queue for that delay, waits for its confirm, and only then
// acknowledges the original. The copy waits out the queue's TTL and
// dead-letters back to the group's queue. The delay and the attempt count
// thus survive a crash of the consumer: at worst (a crash between the
// confirm and the acknowledgement) the message is delivered twice. Delays
// are rounded up to buckets of ceil(2^(i/2)) milliseconds (1, 2, 3, 4, 6, 8,
// 12, 16, 23, 32, 46, 64, 91, 128, 182, 256, ... ms), so a retry waits at
// least the delay asked for and at most √2 times as long plus 1ms (the
// rounding to whole milliseconds), and the default backoff (100ms to 30s
// with jitter) uses 19 retry queues per group at most; delays are capped at
// 24 hours. One TTL per queue means no head-of-line blocking:
// messages of one bucket expire in the order they entered it. If the copy
// cannot be published, the original is requeued (nack) after the delay
// instead, and the attempt counts as a crash redelivery.
//
// Message.Attempt is x-switchyard-attempt (1 when absent) plus the number of
// times this copy went back to its queue unacknowledged: quorum queues count
// that exactly in x-delivery-count, so Attempt never resets or stalls after
// consumer crashes; classic queues only flag a redelivery, which counts as
// one however many crashes there were. Prefer quorum queues (the default)
// where that matters. Messages of one Key are not kept in order (Features
// OrderingByKey is false): prefetch and concurrent handlers reorder them.
//
// A broker restart (rabbitmqctl stop_app/start_app, or the whole server)
// needs no application restart: each connection is redialled with backoff
// (100ms doubling to 5s, with jitter), publishes wait as described above,
// and subscriptions declare their group again and resume consuming; Receive
// simply blocks during the outage. Open fails with a clear error, naming
// host:port, if the broker is unreachable or silent for ConnectTimeout
// (default 10s).
//
// # Errors
//
// Publish, Subscribe and CreateGroup validate names, options and messages
// before any I/O and return the pubsub sentinels (pubsub.ErrInvalidTopic,
// pubsub.ErrInvalidGroup, pubsub.ErrInvalidOption, pubsub.ErrInvalidMessage,
// pubsub.ErrMessageTooLarge for a message over MaxMessageBytes) wrapped with
// details. After Close every call returns pubsub.ErrClosed. A cancelled
// context returns its error unwrapped; running out of ConfirmTimeout returns
// an error wrapping context.DeadlineExceeded. RabbitMQ's refusals (for
// example PRECONDITION_FAILED when a group's queue exists with another
// queue type) are returned as *amqp091.Error, wrapped with what was being
// done; use errors.As to read the code.
//
// # Why amqp091-go rather than watermill-amqp
//
// The transport is built on github.com/rabbitmq/amqp091-go directly.
// watermill-amqp (v3) wraps the same client but is slow or unsafe for this
// contract by default: publisher confirms are off; with ConfirmDelivery on,
// its Publish waits for each message's confirm before sending the next, so
// a batch or a busy publisher pays one round-trip (and for quorum queues one
// disk sync) per message; its consumer prefetch is 1; and it retries
// nothing on the broker (its retries are router middleware in the
// consumer's memory, lost on a crash). Switchyard needs pipelined
// deferred confirmations, broker-side retry queues with attempt headers,
// per-subscription prefetch and its own reconnection, which are each a few
// lines on amqp091-go and would fight watermill-amqp's abstractions.
// amqp091-go's experimental automatic recovery is not used either: it
// reuses channel objects across connections, where deferred confirmations
// and delivery tags of the lost connection must not be mistaken for new
// ones. watermill-amqp appears only in this package's benchmark
// (BenchmarkEndToEnd/watermill-amqp, with ConfirmDelivery on) as a
// reference point; package pubsub/watermillbridge adapts any Switchyard
// broker, this one included, to watermill's interfaces.
package rabbitmq
