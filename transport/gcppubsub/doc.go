// Package gcppubsub is the Google Cloud Pub/Sub transport of Switchyard,
// built on cloud.google.com/go/pubsub/v2. New, OpenURL and transport.Open
// with a gcppubsub:// URL return a *pubsub.Client: the portable layer of
// package pubsub (validation, the delivery loop with its retries, dead
// letters, concurrency, observers, phased shutdown) around this package's
// driver, which only does Pub/Sub I/O. Applications use the pubsub API and
// need nothing else from this package but Config.
//
// The broker honours PUBSUB_EMULATOR_HOST as Google's own clients do: when
// it is set, the client talks plain gRPC to that address without
// credentials (the pstest fake and Google's emulator both work; see
// examples/cmd/pubsub-emulator, and "Emulators" below). Otherwise it uses
// Application Default Credentials, or Config.ClientOptions.
//
// Client.As gives the v2 client the broker uses (**pubsub.Client of
// cloud.google.com/go/pubsub/v2) and the ordering keys that failed
// publishes paused (*OrderingKeys).
//
// # URL
//
//	gcppubsub://PROJECT_ID[?create=BOOL&ordering=BOOL&max_message_bytes=N&ack_deadline=DURATION&streams=N&dead_letter_retention=DURATION]
//
// create=false (Config.DisableAutoCreate) makes the broker create and change
// nothing. ordering=false (Config.DisableOrdering) creates subscriptions
// without message ordering. max_message_bytes, ack_deadline (such as 30s),
// streams and dead_letter_retention (such as 72h) set Config.MaxMessageBytes,
// Config.AckDeadline, Config.ReceiveStreams and Config.DeadLetterRetention.
// Unknown parameters, a path and user information are errors; credentials
// never go in the URL.
//
// # Topic mapping
//
// A Switchyard topic T is the Pub/Sub topic T. Consumer group G of T is the
// subscription "T+G" on it, and G's dead letters are kept by the topic
// "T+G+dl" and the subscription "T+G+dl" on that topic. Publish creates a
// missing topic; CreateGroup and the group's first Subscribe create the
// group's subscription, dead-letter topic and dead-letter subscription.
//
// The group's subscription has:
//
//   - the filter
//     NOT attributes:switchyard-to OR attributes.switchyard-to = "G":
//     it takes every message except those the broker sends to one other
//     group of the topic (replayed dead letters and messages handed back
//     untouched, see "Delivery semantics"). Pub/Sub cannot change a filter,
//     so only subscriptions created with it keep such messages to their
//     group; subscriptions on the topic made outside Switchyard receive
//     them unless they filter on switchyard-to too;
//   - message ordering (unless DisableOrdering), the ack deadline of
//     Config.AckDeadline, and no expiry (a group lives until deleted;
//     Pub/Sub's default would delete it after 31 idle days);
//   - a dead-letter policy to "T+G+dl" of WithMaxAttempts plus one
//     deliveries (within Pub/Sub's 5 to 100; WithMaxAttempts above 100 is
//     refused with pubsub.ErrInvalidOption): the only way to make Pub/Sub
//     count deliveries;
//   - a retry policy of the subscription's WithBackoff: minimum backoff the
//     initial delay, maximum the longest (each at most Pub/Sub's 600s).
//
// The two policies are set by each Subscribe (the last one's options win)
// and are left out on emulators. On Google Cloud, Pub/Sub's service agent
// needs the publisher role on "T+G+dl" and the subscriber role on "T+G" to
// forward dead letters itself; without them it still counts. Every group
// thus receives every message published after its subscription was created,
// and the members of a group, in any number of processes, share its
// messages.
//
// Switchyard names (1 to 200 bytes of letters, digits, '.', '_', '-') are
// used unchanged when Pub/Sub accepts them as IDs (3 to 255 characters,
// starting with a letter, not starting with "goog"). The others are mapped
// rather than refused, so that every valid Switchyard name works on every
// transport: an ID that is shorter than 3 bytes, does not start with a
// letter, or starts with "goog" gets the prefix "sy~" ("7days" is the topic
// "sy~7days", its group "g" the subscription "sy~7days+g"); an ID over 255
// bytes (long names joined) keeps its first 238 bytes followed by '~' and 16
// hex digits of the SHA-256 of the whole name. Switchyard names contain
// neither '+' nor '~', so no two topic/group pairs, and no group and a
// dead-letter topic or subscription, share an ID: topic "a.b" with group "c"
// ("a.b+c") and topic "a" with group "b.c" ("a+b.c") are apart. Names
// invalid for Switchyard fail with pubsub.ErrInvalidTopic or
// pubsub.ErrInvalidGroup before any I/O.
//
// With DisableAutoCreate, topics and subscriptions must exist as above; the
// broker reads a group's subscription (when its identity may) to follow what
// it has: without the filter, hand-backs go back by nack and count a
// delivery; without a dead-letter policy, Pub/Sub reports no count; without
// a retry policy, retries wait in the member (see below). For example:
//
//	gcloud pubsub topics create orders+billing+dl
//	gcloud pubsub subscriptions create orders+billing+dl --topic=orders+billing+dl --expiration-period=never
//	gcloud pubsub subscriptions create orders+billing --topic=orders --enable-message-ordering \
//	  --message-filter='NOT attributes:switchyard-to OR attributes.switchyard-to = "billing"' \
//	  --dead-letter-topic=orders+billing+dl --max-delivery-attempts=6 \
//	  --min-retry-delay=0.1s --max-retry-delay=30s --expiration-period=never
//
// A message travels as a Pub/Sub message: Payload is the data, Metadata the
// attributes, Key the ordering key, and ID the attribute "switchyard-id"
// (Pub/Sub's own message ID changes with every publish; messages from other
// publishers, without the attribute, get Pub/Sub's message ID as
// Message.ID). The attributes "switchyard-to", "switchyard-attempt" and
// "switchyard-not-before" are the broker's, for hand-backs; metadata may not
// use them.
//
// Migrating from releases that named a group's subscription "T.G" (and kept
// dead letters on a topic "T.dlq"): the new subscription "T+G" receives only
// what is published after it is created, so that nothing is lost or handled
// twice:
//
//  1. with the new release, CreateGroup(T, G) for every group (at t0),
//     while the old members still run;
//  2. stop the old members once subscription "T.G" has no backlog (at t1):
//     they handled every message published before t1;
//  3. seek "T+G" to t1 (gcloud pubsub subscriptions seek T+G --time=t1),
//     which acknowledges what it holds from before t1, and start the new
//     members;
//  4. handle or move what is left on "T.dlq", then delete "T.G", the old
//     dead-letter subscriptions and "T.dlq".
//
// ListGroups (pubsub.GroupLister) tells the groups of a topic by name
// only: they are the subscriptions of the broker's project on the topic
// (ListTopicSubscriptions) whose IDs are "T+G" as mapped above; the others
// (another client's, another project's) are left out. A shortened ID does
// not give its group back: the group is read from the subscription's
// filter, which names it unless the group's name is over 180 bytes (then a
// hash); such a group (a topic and group over 255 bytes together, the
// group over 180) is left out, with a warning in the log. Backlog and
// DeadLetters are always -1: Pub/Sub's API counts no messages, and reading
// a dead-letter subscription to count it (as ListDeadLetters does) leases
// its messages and may be answered with fewer than it holds, which would
// show as a count too low. Cloud Monitoring has both counts, a minute or
// more late: subscription/num_undelivered_messages of "T+G" (the backlog,
// without messages held by members) and of "T+G+dl" (the dead letters).
// A topic that does not exist is pubsub.ErrNotFound; a topic without
// groups lists none.
//
// # Delivery semantics
//
// At-least-once. A message is acked only after its handler returned nil.
//
// Retries wait out their backoff on Pub/Sub: the member nacks the message,
// which leaves its flow-control window at once, and Pub/Sub delivers it
// again, to any member, after the retry policy's backoff. Pub/Sub applies
// the policy best effort: the delay grows exponentially from the minimum to
// the maximum with the message's deliveries, without the jitter of the
// delay the delivery loop asks for (which observers are told). Any number
// of messages may wait at once without holding back the group's others. A
// message that holds its ordering key (on an ordered subscription) waits in
// the member instead, its lease extended and its key held, since a nack
// would have Pub/Sub deliver the key's later messages again too: it keeps
// a slot of the member's window, so up to 2×WithConcurrency keys can wait
// at once per member before it receives nothing new until one's backoff
// ends. Where the subscription has no retry policy (emulators, or one made
// without it) every retry waits in the member.
//
// Attempt is Pub/Sub's delivery count (subscriptions with a dead-letter
// policy), so it survives a member that crashes: its leases lapse after the
// ack deadline and the message comes back to any member, counted once more.
// A message handed back untouched (fetched ahead but not handled when its
// Subscription closed, or taken while it was stopping) keeps its Attempt:
// the broker publishes it again to the topic for its group alone
// (switchyard-to, with switchyard-attempt carrying the Attempt, so that it
// holds in every process) and acks the original. A message that holds its
// ordering key cannot be published again without losing its place in the
// key's order: it is nacked, which Pub/Sub counts; the broker subtracts that
// from the next delivery in the same process only. A parked dead letter
// handed back by a stopping member goes back the same way, with an Attempt
// past WithMaxAttempts, so that the next member dead-letters it at once.
// Pub/Sub forwards a message to "T+G+dl" itself only after one delivery
// more than WithMaxAttempts (members that kept crashing while holding it).
//
// Close (of a Subscription, or of the broker) first waits until the client
// has sent the acks and nacks it queued (it sends its queue every 100ms;
// Close waits until 250ms after the last one, since the client drops what
// is still queued once its streams stop, and those messages would come
// back after their ack deadline). Then it stops the client's streams, so
// that Pub/Sub sends nothing more, and hands back what the
// member holds: messages waiting for a handler untouched, as above, and
// messages waiting out a backoff in the member with the rest of it: published
// again for their group with switchyard-not-before (the member that gets
// one holds it until then), or, holding their ordering key, nacked, so that
// Pub/Sub waits out its retry policy's backoff. Messages that Pub/Sub had
// sent but the client had not read when the stream closed come back after
// the ack deadline, counted. No message is redelivered in a hot loop.
//
// Flow control: each Subscription tells Pub/Sub to send each of its
// streams (Config.ReceiveStreams) at most twice its WithConcurrency of
// messages not yet acked or nacked (max_outstanding_messages), and the
// client runs at most that many callbacks in all.
//
// Leases: the client extends the ack deadline of every message the member
// holds by Config.AckDeadline at a time, for at most an hour plus
// WithMaxAttempts times the longest backoff; a handler still running after
// that sees its message delivered again. TestLongHandler (build tag
// reliability) runs handlers for three times the ack deadline on pstest:
// each message is handled once, with Attempt 1, delivered and acked once.
//
// Ordering: subscriptions are created with message ordering, Key is the
// ordering key, and the client calls the handler for one key at a time. A
// failed message holds its key through its backoff, so a key's messages are
// handled one at a time in publish order across retries. When a member
// crashes or closes, Pub/Sub delivers a key's unacked messages in order to
// another member. On Google Cloud, ordering holds within a region: publish
// through a regional endpoint (Config.ClientOptions) when ordering matters.
//
// Publish returns after Pub/Sub accepted every message. It is built on the
// v2 client's Publisher directly (one per topic, kept for the broker's
// life): it hands the whole batch to the client's batching publisher and
// then waits for all results, so batches and concurrent calls share publish
// requests (of up to 1,000 messages or 1 MB, sent after at most 10ms).
// Pub/Sub answers per request, and the client puts each ordering key in
// requests of its own: on failure Publish returns a *pubsub.PublishError
// with the messages that were not accepted. After a failed publish with an
// ordering key the key stays paused: the failed message's error and every
// later message of the key, not sent, wrap pubsub.ErrOrderingKeyPaused,
// until the application resumes the key with OrderingKeys (Client.As), so
// that no later message of the key overtakes the failed one. BenchmarkPublish
// compares Publish with the raw client and with watermill-googlecloud.
//
// Outages: the gRPC connection reconnects by itself. While Pub/Sub is
// unreachable the client retries each publish request for up to 60s and
// Publish waits, bounded by its context, then fails; it never reports a
// message accepted that was not. Subscriptions keep retrying their streams.
// A topic or subscription found missing (deleted, or an emulator restarted
// empty) is set up again unless DisableAutoCreate: Publish creates the
// topic and publishes the failed messages once more (resuming their keys in
// the same step), and a running Subscription sets its group up again
// (messages published while a group's subscription was missing are not kept
// for it). Subscribe retries while Pub/Sub is unavailable, within its
// context.
//
// # Readiness
//
// Ping (pubsub.Client.Ping) asks Pub/Sub for a topic that never exists.
// While Pub/Sub is unreachable the client retries that call (Unavailable
// is retryable), so Ping reports the outage when the caller's context
// ends: give it a timeout, as a readiness probe does (measured through a
// fault proxy that cuts and refuses every connection, with a 1s timeout:
// 1.0s). Ping reports ready again once gRPC has reconnected, which it does
// with its own backoff (1s growing 1.6 times to 120s, with jitter), so the
// time grows with the outage's length: after a 10s outage, measured 4.9s.
// Subscriptions resume once their streams are opened again, with the
// client's own retry backoff: the first delivery came 0.1 to 9.4s after a
// 10s outage in two runs, and messages pstest had sent on the cut streams
// came again (43 and 67 duplicates over two groups). TestNetworkFaults (build
// tag reliability) asserts 5s (with a 1s timeout) and 15s.
//
// # Dead letters
//
// Each group's dead letters are its own: the delivery loop publishes a dead
// letter (the message with the portable layer's metadata) to "T+G+dl" and
// acks the message only once Pub/Sub accepted it; if that fails, the loop
// parks the message. ListDeadLetters reads every dead letter of the group
// from "T+G+dl" (Pull), orders them oldest first, and hands them back at
// once: meanwhile they are leased, so a concurrent admin call on the same
// group does not see them, and Pub/Sub's Pull may return fewer messages
// than it holds (a listing ends at its first empty answer).
// ReplayDeadLetters publishes the matching dead letters to T for G alone,
// without their dead-letter metadata (their first delivery has Attempt 1),
// and removes each once Pub/Sub accepted it; PurgeDeadLetters removes them.
// Dead letters Pub/Sub forwarded itself get the portable layer's metadata
// from Pub/Sub's CloudPubSubDeadLetter* attributes. The admin calls return
// pubsub.ErrNotFound for a group without a subscription; DeleteGroup
// removes the group's subscription and its dead letters.
//
// Dead letters are bounded by time: Pub/Sub deletes a dead letter once it
// is older than the dead-letter subscription's message retention
// (Config.DeadLetterRetention: 7 days by default, Pub/Sub's maximum for a
// subscription; at least 10 minutes). Replay or purge them before.
//
// # Emulators
//
// With PUBSUB_EMULATOR_HOST set, the broker works around what emulators do
// differently (emulator.go, and nothing else): it sets no dead-letter or
// retry policy (pstest counts a message's deliveries to every subscription
// of its topic together, and forwards on that shared count: with five
// groups or more some would never get a message; emulators apply no retry
// policy). So on an emulator Attempt counts the retries and hand-backs the
// broker saw, not crashes, and retries wait out their backoff in the member.
// It makes no emulator-only call.
//
// pstest is slower than Pub/Sub and does less, whatever the client:
//
//   - it delivers at most one message per stream every 10ms, and each tick
//     also scans every undelivered message of the subscription: one member
//     drains a backlog of 1,000 messages at about 90 messages/s with one
//     stream, and one of 10,000 at about 67 (2 min 30 s), where one stream
//     of the Pub/Sub service carries about 10 MB/s. Config.ReceiveStreams
//     opens more streams: with 4, a backlog of 10,000 drains at about 275
//     messages/s (36 s). BenchmarkDrain compares the transport with the raw
//     client on the same emulator: it drains as fast (1.0 to 1.1 times);
//   - it has no flow control: it pushes a group's backlog to a member
//     whatever the member's window, and gives messages to the first stream
//     free rather than balancing the group's members. A member on an
//     emulator takes up to 1,000 messages, so that Close hands them all
//     back; the message being pushed when the member's stream closes comes
//     back after 2 seconds;
//   - it takes requests of at most 4 MB (Pub/Sub: 10 MB), and keeps
//     undelivered messages, dead letters included, for 10 minutes.
//
// # Errors
//
// Publish checks every message against Pub/Sub's limits before anything is
// sent, and sends nothing if one fails: a nil message, empty metadata keys,
// keys starting with "goog", the broker's attributes ("switchyard-id",
// "switchyard-to", "switchyard-attempt", "switchyard-not-before"), and text
// that is not UTF-8 (attributes, ID, Key) wrap pubsub.ErrInvalidMessage; a
// message whose encoded size (payload, attributes including the ID, and
// ordering key, as Pub/Sub counts it) is over Config.MaxMessageBytes (10 MB
// less 4,096 bytes kept for the request, for dead-letter metadata and for
// hand-back attributes), a metadata key over 256 bytes or value over 1,024
// bytes, more than 94 metadata entries besides the dead-letter metadata
// (Pub/Sub allows 100 attributes; one carries the ID and five the
// dead-letter metadata, and a hand-back adds three), an ID over 1,024 bytes
// or a Key over 1,024 bytes wrap pubsub.ErrMessageTooLarge.
//
// Errors from Pub/Sub are wrapped with the full name of the project's topic
// or subscription involved ("gcppubsub: publish to
// projects/P/topics/T: ...") and keep their gRPC status (status.Code works
// on them); failed messages of a Publish are reported in a
// *pubsub.PublishError, and those with a paused ordering key wrap
// pubsub.ErrOrderingKeyPaused. Context errors are returned unwrapped. No
// error carries credentials: the broker never puts them in its errors, and
// OpenURL refuses URLs with user information without repeating it. The
// dead-letter admin calls and DeleteGroup return pubsub.ErrNotFound for a
// group without a subscription, and ListGroups for a topic that does not
// exist. After Close, calls return pubsub.ErrClosed.
package gcppubsub
