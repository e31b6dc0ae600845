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
// Retries stay with the member that received the message: a failed message
// stays leased (the client keeps extending its ack deadline) and goes to a
// handler of the same Subscription again when its backoff has passed, so
// the portable exponential backoff with jitter holds exactly, on Pub/Sub and
// on emulators alike, with no redelivery round-trip and no nack. Nacking
// instead would have Pub/Sub redeliver at once (pstest implements no retry
// policy, and a subscription's retry policy would apply one schedule to the
// whole group, not each Subscription's WithBackoff), and on an ordered
// subscription it would make Pub/Sub redeliver the key's later messages too.
//
// Attempt is Pub/Sub's delivery count at receipt plus the retries made
// since. Subscribe gives the subscription a dead-letter policy, the only way
// to make Pub/Sub count deliveries, so the count survives a consumer that
// crashes or closes: the message comes back, to any member, with Pub/Sub's
// count incremented (the retries the lost member made are not counted
// again, so a message can get more attempts in all than WithMaxAttempts,
// never fewer). The policy's topic is the subscription's dead-letter topic
// ("<topic>.dlq" by default) and its max delivery attempts is
// WithMaxAttempts plus one, within Pub/Sub's range of 5 to 100: the portable
// layer dead-letters a message at MaxAttempts (with the switchyard-*
// metadata saying why), so Pub/Sub forwards one itself only when members
// kept crashing or closing while holding it; such dead letters carry Pub/Sub's
// CloudPubSubDeadLetter* attributes instead. WithMaxAttempts above 100 is
// refused with pubsub.ErrInvalidOption. On Google Cloud, Pub/Sub's service
// agent needs the publisher role on the dead-letter topic and the
// subscriber role on the subscription to forward; without them it still
// counts. With DisableAutoCreate the subscriptions must carry such a policy
// themselves; without one Pub/Sub reports no count and the member counts
// the deliveries it saw itself.
//
// Emulators: pstest counts a message's deliveries to all subscriptions of
// its topic together, so a group's first delivery of a message can report
// attempt 3 when two other groups got it first. When PUBSUB_EMULATOR_HOST is
// set, the broker therefore uses Pub/Sub's count only while the topic has a
// single subscription (asking at most once a second), and otherwise the
// member's own count of deliveries it saw, which restarts in a new process.
// pstest also forwards a message to the dead-letter topic when that shared
// count reaches the policy's maximum, which can happen on the first
// hand-back once a topic has that many groups (5 or more). And it has no
// server-side flow control: it gives messages published one at a time to
// the group member that connected first, so the members of a group share
// work only under bursts.
//
// A consumer crash: its leases lapse and Pub/Sub redelivers its messages
// after the ack deadline (Config.AckDeadline, 10s by default), including
// those waiting out a backoff. A Subscription that closes (after its drain)
// lets the client send the latest acks, then stops the client's streams and
// only then nacks every message still held: unsettled ones, those waiting
// out a backoff, and those not yet handed to a handler. Pub/Sub redelivers
// them at once to the group's other members (nacked while the streams were
// open, they could come straight back to the closing member and wait there
// for the ack deadline). No message is redelivered in a hot loop.
//
// Ordering: subscriptions are created with message ordering, Key is the
// ordering key, and the client calls the handler for one key at a time. A
// failed message holds its key through its backoff, so a key's messages are
// handled one at a time in publish order across retries. When a member
// crashes or closes, Pub/Sub redelivers a key's unacked messages in order to
// another member. On Google Cloud, ordering holds within a region: publish
// through a regional endpoint (Config.ClientOptions) when ordering matters.
//
// Publish returns after Pub/Sub accepted every message. It is built on the v2
// client's Publisher directly (one per topic, kept for the Broker's life)
// rather than on watermill-googlecloud's publisher, which waits for each
// message's result before publishing the next (about 90 messages/s against
// pstest): Publish hands the whole batch to the client's batching publisher
// and then waits for all results, so batches and concurrent calls share
// publish requests (of up to 1,000 messages or 1 MB, sent after at most
// 10ms). The benchmark in this package compares it with the raw
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
// Leases: the client extends the ack deadline of every message it holds,
// for at most an hour plus WithMaxAttempts times the longest backoff; a
// handler still running after that sees its message redelivered.
//
// Flow control: each Subscription lets the client hold up to twice its
// WithConcurrency of messages (handlers running, messages waiting for a free
// handler, and keyed messages holding their key through a backoff; the
// client extends their leases). Messages without a key waiting out a backoff
// do not count.
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
