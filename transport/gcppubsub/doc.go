// Package gcppubsub is the Google Cloud Pub/Sub transport of Switchyard,
// built on cloud.google.com/go/pubsub/v2. A Broker (New, OpenURL, or
// transport.Open with a gcppubsub:// URL) publishes to Pub/Sub topics and
// runs consumer groups as Pub/Sub subscriptions, with the portable delivery
// loop of package pubsub on top: retries with backoff, dead letters,
// concurrency and drain behave as on every other transport.
//
// The broker honours PUBSUB_EMULATOR_HOST as Google's own clients do: when
// it is set, the client talks plain gRPC to that address without
// credentials (the pstest fake and Google's emulator both work; see
// examples/cmd/pubsub-emulator). Otherwise it uses Application Default
// Credentials, or Config.ClientOptions.
//
// # URL
//
//	gcppubsub://PROJECT_ID[?create=BOOL&ordering=BOOL&max_message_bytes=N&ack_deadline=DURATION&streams=N]
//
// create=false (Config.DisableAutoCreate) makes no admin calls: topics and
// subscriptions must exist. ordering=false (Config.DisableOrdering) creates
// subscriptions without message ordering. max_message_bytes,
// ack_deadline (such as 30s) and streams set Config.MaxMessageBytes,
// Config.AckDeadline and Config.ReceiveStreams. Unknown parameters, a path and
// user information are errors; credentials never go in the URL.
//
// # Topic mapping
//
// A Switchyard topic is the Pub/Sub topic of the same ID, created by Publish
// and Subscribe when missing. A consumer group is the subscription
// "<topic>.<group>" attached to it, created by the group's first Subscribe
// (or CreateGroup) with message ordering (unless DisableOrdering), the ack
// deadline of Config.AckDeadline, a dead-letter policy (see below) and no
// expiry, since a group lives until deleted; Pub/Sub's default would delete
// it after 31 idle days. Every group thus receives every message published
// after its subscription was created, and the members of a group, in any
// number of processes, share its messages.
//
// Switchyard names (1 to 200 bytes of letters, digits, '.', '_', '-') are
// used unchanged when Pub/Sub accepts them as IDs (3 to 255 characters,
// starting with a letter, not starting with "goog"). The others are mapped
// rather than refused, so that every valid Switchyard name works on every
// transport: a name that is shorter than 3 bytes, does not start with a
// letter, or starts with "goog" gets the prefix "sy~" ("7days" is the topic
// "sy~7days"); an ID over 255 bytes (a long topic and group together) keeps
// its first 238 bytes followed by '~' and 16 hex digits of the name's
// SHA-256. Switchyard names contain no '~', so a mapped ID never equals an
// unmapped one. Because "<topic>.<group>" joins two names that may contain
// dots, topic "a.b" with group "c" and topic "a" with group "b.c" would share
// a subscription; Subscribe detects that the subscription belongs to the
// other topic and fails with pubsub.ErrInvalidGroup. Names invalid for
// Switchyard fail with pubsub.ErrInvalidTopic or pubsub.ErrInvalidGroup
// before any I/O.
//
// A message travels as a Pub/Sub message: Payload is the data, Metadata the
// attributes, Key the ordering key, and ID the attribute "switchyard-id"
// (Pub/Sub's own message ID changes with every publish; messages from other
// publishers, without the attribute, get Pub/Sub's ID as Message.ID).
//
// # Delivery semantics
//
// At-least-once. A message is acked only after its handler returned nil.
//
// Attempts are counted by Pub/Sub: Subscribe gives the subscription a
// dead-letter policy, the only way to make Pub/Sub report a delivery attempt
// (pstest, the fake, does likewise), so Message.Attempt survives consumer
// crashes and is shared by all members of the group. The policy's topic is
// the subscription's dead-letter topic ("<topic>.dlq" by default) and its
// max delivery attempts is WithMaxAttempts plus one, within Pub/Sub's range
// of 5 to 100: the portable layer dead-letters a message at MaxAttempts (with
// the switchyard-* metadata saying why), so Pub/Sub forwards a message itself
// only when the portable layer could not, such as after a consumer crashed
// during the last attempt; such dead letters carry Pub/Sub's
// CloudPubSubDeadLetter* attributes instead. Below 5, the portable layer's
// count decides alone and Pub/Sub's policy (5) is only that fallback.
// WithMaxAttempts above 100 is refused with pubsub.ErrInvalidOption. On
// Google Cloud, Pub/Sub's service agent needs the publisher role on the
// dead-letter topic and the subscriber role on the subscription to forward;
// without them it still counts attempts. With DisableAutoCreate the
// subscriptions must carry such a policy themselves; without one Pub/Sub
// reports no count and the receiver counts its own deliveries of each
// message, which restarts in a new process.
//
// Retry delays are kept by the client: a failed message stays leased (the
// client extends its ack deadline) and is nacked when its backoff has
// passed, whereupon Pub/Sub redelivers it at once. This gives the portable
// exponential backoff with jitter exactly, on Pub/Sub and on emulators
// alike (pstest implements no retry policy, and a subscription's retry
// policy would apply one schedule to the whole group instead of each
// subscription's WithBackoff). If the consumer crashes meanwhile, the lease
// lapses and Pub/Sub redelivers the message after the ack deadline (10s by
// default) instead; no message is redelivered in a hot loop either way.
//
// Closing a Subscription (after its drain) lets the client send the latest
// acks, then stops the client's streams and only then nacks every message
// still held: unsettled ones, those waiting out a delay, and those not yet
// handed to a handler. Pub/Sub redelivers them at once to the group's other
// members (nacked while the streams were open, they could come straight
// back to the closing member and wait there for the ack deadline).
//
// Ordering: subscriptions are created with message ordering, Key is the
// ordering key, and the client calls the handler for one key at a time; a
// failed message keeps its key until it is nacked after its backoff. Pub/Sub
// then redelivers it together with the key's later messages, so under
// retries a later message can be handled before the failed one's next
// attempt and again after it (at-least-once); pstest delivers a key's next
// message only after the previous one was acked. On Google Cloud, ordering
// holds within a region: publish through a regional endpoint
// (Config.ClientOptions) when ordering matters.
//
// Publish returns after Pub/Sub accepted every message. It is built on the v2
// client's Publisher directly (one per topic, kept for the Broker's life)
// rather than on watermill-googlecloud's publisher, which waits for each
// message's result before publishing the next (about 94 messages/s against
// pstest): Publish hands the whole batch to the client's batching publisher
// and then waits for all results, so batches and concurrent calls share
// publish requests. The benchmark in this package compares it with the raw
// client and with watermill-googlecloud. After a failed publish with an
// ordering key the client pauses the key; Publish resumes it, so the next
// call can retry.
//
// Outages: the gRPC connection reconnects by itself. While Pub/Sub is
// unreachable the client retries each publish request for up to 60s and
// Publish waits, bounded by its context, then fails; it never reports a
// message accepted that was not. Subscriptions keep retrying their streams.
// A topic or subscription found missing (deleted, or an emulator restarted
// empty) is set up again unless DisableAutoCreate: Publish creates the topic
// and publishes the failed messages once more, and a running Subscription
// recreates its subscription and dead-letter group (messages published
// while a group's subscription was missing are not kept for it).
//
// Flow control: each Subscription lets the client hold up to twice its
// WithConcurrency of unsettled messages (handlers running, and messages
// waiting for a free handler, whose leases the client extends).
//
// # Errors
//
// Publish checks every message against Pub/Sub's limits before anything is
// sent, and sends nothing if one fails: a nil message, empty metadata keys,
// keys starting with "goog", the reserved key "switchyard-id", and text that
// is not UTF-8 (attributes, ID, Key) wrap pubsub.ErrInvalidMessage; a message
// whose encoded size (payload, attributes including the ID, and ordering key,
// as Pub/Sub counts it) is over Config.MaxMessageBytes (10 MB less 4,096
// bytes kept for the request and for dead-letter metadata), a metadata key
// over 256 bytes or value over 1,024 bytes, more than 95 metadata entries
// (Pub/Sub allows 100 attributes; one carries the ID and four are kept for
// dead letters), an ID over 1,024 bytes or a Key over 1,024 bytes wrap
// pubsub.ErrMessageTooLarge. pstest's gRPC server takes requests of at most
// 4 MB, so larger messages pass these checks but fail on it.
//
// Errors from Pub/Sub are wrapped with the full name of the project's topic
// or subscription involved ("gcppubsub: publish to
// projects/P/topics/T: ..."); context errors are returned unwrapped. No
// error carries credentials: the broker never puts them in its errors, and
// OpenURL refuses URLs with user information without repeating it. After
// Close, calls return pubsub.ErrClosed.
package gcppubsub
