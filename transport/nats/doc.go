// Package nats is Switchyard's NATS JetStream transport: a pubsub.Broker
// on durable JetStream streams and pull consumers, built on
// github.com/nats-io/nats.go and its jetstream package. It is safe by
// default for one server (file storage, acknowledged publishes, explicit
// acks, no limit that drops messages) and scales out to a cluster by URL.
//
// Open it with transport.Open(ctx, "nats://localhost:4222"), or with OpenURL
// or New and a Config. A broker holds one connection, which nats.go
// re-establishes by itself; publishing, subscriptions and administration
// share it. The server must run JetStream (nats-server -js).
//
// # URL
//
//	nats://[USER:PASSWORD@|TOKEN@]HOST[:PORT][,HOST[:PORT]...][?QUERY]
//	tls://...   the same, with TLS required
//
// The port defaults to 4222; list the servers of a cluster separated by
// commas (nats.go learns the others from the server it reaches). A user
// without a password is a token. Credentials can also come from the query
// or the Config: creds=FILE (a user JWT and its seed, from nsc or an
// operator), nkey=FILE (an nkey seed), and for TLS tls_ca=FILE,
// tls_cert=FILE and tls_key=FILE (PEM). Errors and logs name the servers by
// host:port; the password or token never appears in them. The other query
// parameters, all optional, with their defaults:
//
//	namespace=switchyard    first subject token and stream-name prefix (Config.Namespace)
//	replicas=1              copies of each stream; 3 on a cluster (Config.Replicas)
//	storage=file            file or memory (Config.Storage)
//	max_age=0               age limit of a topic's stream; 0: none (Config.MaxAge)
//	max_bytes=0, max_msgs=0 size limits of a topic's stream; 0: none (Config.MaxBytes, MaxMsgs)
//	duplicate_window=2m     how long a stream remembers message IDs (Config.DuplicateWindow)
//	ack_wait=30s            redelivery after a member stopped answering (Config.AckWait)
//	max_ack_pending=10000   a group's messages delivered, unsettled or waiting to retry (Config.MaxAckPending)
//	dead_letter_max=10000   dead letters kept per group (Config.DeadLetterMax)
//	dead_letter_max_bytes=0 size limit of the namespace's dead letters; 0: none (Config.DeadLetterMaxBytes)
//	max_message_bytes=...   largest message; default the server's max_payload less 4096 (Config.MaxMessageBytes)
//	prefetch=256            messages a subscription holds at most, at least 2×concurrency (Config.Prefetch)
//	publish_window=4096     published messages awaiting acknowledgement at once (Config.PublishWindow)
//	request_timeout=30s     bound on Publish, set-up and admin calls (Config.RequestTimeout)
//	connect_timeout=10s     bound on each connection attempt (Config.ConnectTimeout)
//	name=switchyard         the connection's name on the server (Config.Name)
//
// Any other parameter is an error. On a cluster use replicas=3: a stream
// then survives the loss of a server, and Publish returns once a majority
// of its replicas stored each message. The limits apply to the streams the
// broker creates; a stream or consumer that exists is used as it is, so
// change the settings of existing ones with the nats command line (for
// example "nats stream edit"). Leave max_age at 0 unless losing old
// messages is acceptable: JetStream removes a message past its age even
// if a group has not settled it. max_bytes and max_msgs never drop: when a
// stream is full, Publish waits for the groups to make room, up to
// request_timeout, and then fails.
//
// # Topic mapping
//
// With the namespace NS ("switchyard" by default; letters and digits, so
// that applications sharing a NATS account stay apart):
//
//   - A topic T is the subject NS.T, in a stream of its own named NS_<T
//     encoded>. Other clients publish to T by publishing to NS.T, with a core
//     NATS publish or a JetStream one. A stream per topic, rather than one
//     per namespace, gives each topic its own limits, its own retention and,
//     on a cluster, its own Raft group and leader, so that topics spread
//     over the servers instead of all passing through one stream leader.
//     Streams use interest retention: a message is kept until every group
//     of the topic settled it, and a topic with no group keeps nothing (as
//     with RabbitMQ, create groups before publishing, with CreateGroup).
//     On NATS Server 2.9, whose interest retention loses unacknowledged
//     messages when the server restarts, the broker creates streams with
//     limits retention instead and purges, every five seconds, the
//     messages below the lowest sequence any consumer of the stream still
//     needs (its ack floor, when it has messages pending or
//     unacknowledged): the same effect, in steps; a message waiting out a
//     long retry delays the purging of those after it. Discard policy
//     "new": a full stream refuses messages, it does not drop old ones.
//   - A group G of T is a durable pull consumer named <G encoded> in T's
//     stream, filtering NS.T, delivering what is published after its
//     creation, with explicit acks, AckWait ack_wait, unlimited deliveries
//     (the portable layer bounds attempts) and MaxAckPending
//     max_ack_pending. Its members share it: competing consumers.
//   - Each group also has its own subject, NS_group.T.<G encoded>, read by a
//     second durable consumer, <G encoded>-own, of the same stream. Messages
//     published there reach that group and no other: released messages,
//     redeliveries with an attempt count of their own, and replayed dead
//     letters go there. Other clients may publish there too, to reach one
//     group.
//   - Dead letters of every group of the namespace are in one stream,
//     NS-deadletters, with limits retention, on the subjects
//     NS_dead.T.<G encoded>: at most dead_letter_max per group (a limit per
//     subject, discard "new" per subject: when a group's dead letters are
//     full, storing one more fails and the message is parked, see pubsub),
//     and dead_letter_max_bytes in all. Dead letters are rare, and one
//     stream is one place to look at all of them ("nats stream view"). The
//     stream is created with the first dead letter.
//
// Names are encoded so that the mapping is injective: letters and digits
// stay, '.' becomes '_', '_' becomes "-_" and '-' becomes "--"
// ("orders.created" is NS_orders_created; group "order-svc" is the
// consumer order--svc). No encoding ends in "-own" or "-h" or equals
// "-deadletters" after a namespace, so groups never meet the objects
// Switchyard adds. Stream and consumer names longer than the server's 255
// bytes (long topics or groups) are cut at 251 bytes, ending in "-h" and 16
// hex digits of the SHA-256 of the full encoding. In subjects the topic
// stays as it is, its dots separating tokens, and the group is one encoded
// token; topics with an empty token (a '.' at either end or two in a row)
// are refused with pubsub.ErrInvalidTopic. Topic "a" with group "b.c" and
// topic "a.b" with group "c" thus use streams NS_a and NS_a_b, and group
// subjects NS_group.a.b_c and NS_group.a.b.c.
//
// A message is a NATS message with headers:
//
//   - Message.Payload is the data, as it is.
//   - Message.ID is the Nats-Msg-Id header, so that the stream drops a
//     message published again with the same ID within duplicate_window
//     (Publish relies on this to publish again safely after a lost
//     acknowledgement). A message from another client without Nats-Msg-Id
//     gets "<stream>:<sequence>" as its ID.
//   - Message.Key is the header x-switchyard-key (absent when empty).
//   - Each Message.Metadata entry is a header of the same name. NATS header
//     values cannot carry line breaks, surrounding spaces or tabs, or
//     bytes that are not UTF-8; such values, and values starting with
//     "=?", travel as RFC 2047 encoded-words ("=?utf-8?b?BASE64?=") and are
//     decoded on delivery. Keys must be printable ASCII without spaces and
//     without "()/,:;<=>?@[\]{}; keys beginning with "Nats-" or
//     "x-switchyard-" (any case) are reserved. Publish refuses other keys
//     with pubsub.ErrInvalidMessage.
//   - Copies on a group's subject and dead letters carry the message's ID
//     in x-switchyard-id (their Nats-Msg-Id is their own), and copies carry
//     the Attempt of their first delivery in x-switchyard-attempt.
//
// # Delivery semantics
//
// Publish returns nil only once the stream stored every message (a
// JetStream publish acknowledgement; with replicas, once a majority of
// them stored it). Messages are published asynchronously and their
// acknowledgements awaited together, so the messages of a batch and
// concurrent Publish calls are pipelined, up to publish_window awaiting
// acknowledgement across the broker. Publish creates the topic's stream on
// first use. While the connection is down, publishes wait for it (nats.go
// buffers what is sent meanwhile); a message whose acknowledgement was lost
// is published again, with the same Nats-Msg-Id, so the stream keeps one
// copy if the first made it (within duplicate_window). A stream without a
// leader, a full stream, a server still starting are waited out the same
// way. All of this is bounded by the caller's context and request_timeout,
// after which Publish fails with a *pubsub.PublishError naming the
// messages not acknowledged (any of which may still have been stored), its
// error wrapping context.DeadlineExceeded; a refusal that will not go away
// fails at once. Publish never reports success without an acknowledgement.
//
// Each subscription pulls from its group's two consumers with one-shot
// fetch requests, one at a time per consumer, each waiting up to half a
// second for messages, and holds at most prefetch of the topic's messages
// (fetched and not settled; at least twice its concurrency) and its
// concurrency of the group's own. Nothing else is held on the client: a
// group with a million messages waiting costs the client its prefetch.
// Delivery is at least once: a message is acknowledged after its handler
// returned nil (or after it was dead-lettered). While a member holds a
// message it tells the server every ack_wait/3 that the message is in
// progress, so a handler may run longer than ack_wait; a member that stops
// answering (a crash, a lost connection) has its messages delivered again
// after ack_wait. Messages of one Key are not kept in order (Features
// OrderingByKey is false): JetStream orders a consumer's deliveries, but
// with several handlers and members at work, and retries, it cannot
// deliver one key's messages one at a time without doing so for all.
//
// Message.Attempt is, after DESIGN line 5, 1 plus the handler runs that
// failed, plus one for a run cut off by a crash:
//
//   - A failed run is retried on the broker with a negative acknowledgement
//     with delay (NakWithDelay): the server delivers the message again
//     after the backoff, and its delivery count, which JetStream keeps,
//     is the Attempt. Messages waiting out a backoff do not hold up the
//     others; up to max_ack_pending of a group's messages may be delivered
//     or waiting at once. NATS Server before 2.10.16 drops, now and then,
//     a redelivery that becomes due as the only pull request waiting
//     expires (members' requests expire every half second when idle), and
//     delivers the message only after ack_wait. On those servers a
//     member waits a backoff shorter than ack_wait itself (it reports
//     progress on the message meanwhile, and takes other messages), then
//     hands the message back as a copy with its next Attempt, as below.
//   - A message delivered again after ack_wait (its member died holding it)
//     counts one more delivery, hence one attempt, as DESIGN line 5 allows
//     for a run cut off by a crash; messages the dead member had fetched
//     but not yet handed to a handler count one too, which is the price of
//     fetching ahead.
//   - A message handed back untouched (a subscription closing with
//     messages fetched ahead, a handler giving a message back as it stops)
//     must not count, but JetStream counts every delivery. Such a message is
//     therefore published to the group's own subject as a copy, with its
//     Attempt in x-switchyard-attempt, and then acknowledged; the copy's
//     Attempt is that value plus its own deliveries after the first. The
//     same is done when the portable layer hands back a run cut off by
//     Shutdown's deadline (the next attempt, at once) or a message whose
//     dead letter could not be stored (an attempt past the maximum). A
//     crash between storing the copy and the acknowledgement leaves both,
//     so the message is delivered twice.
//
// Subscription.Close stops fetching, waits for the requests in progress
// to end (at most half a second: the server may be sending messages to
// them), and hands back what it holds as above. The
// portable layer never hands a handler a message with Attempt above
// WithMaxAttempts.
//
// Dead letters are published to the group's dead-letter subject, with a
// Nats-Msg-Id derived from the message's stream, sequence, group and
// delivery count, so that storing one again after a failed
// acknowledgement keeps one copy, and the message is then acknowledged. If
// either fails the message stays held and the portable layer parks it.
// ListDeadLetters reads them with message-get requests, one per dead
// letter, oldest first, consuming nothing. ReplayDeadLetters publishes each
// (as driver.Revive makes it: Attempt 1) to the group's own subject and
// deletes it from the dead-letter stream; PurgeDeadLetters deletes them.
// DeleteGroup deletes both consumers, purges the group's subject and its
// dead letters.
//
// ListGroups (pubsub.GroupLister) tells every group of a topic and both
// counts, from two requests: the consumers of the topic's stream (one
// consumer-list request) and the dead-letter stream's message count per
// subject of the topic's groups (one stream-info request). A group is a
// consumer whose name decodes to a group name (or, for a shortened name,
// whose description the broker wrote names the group); its own consumer
// is counted with it, and other clients' consumers are left out. Backlog is
// the group's two consumers' pending messages (stored and not delivered
// yet) plus their acknowledgement-pending ones (held by a member, or
// waiting out a retry's delay), exact as the server answered;
// acknowledgements are not waited for, so a message a handler finished
// with a moment ago may still count. DeadLetters is the number of messages
// on the group's dead-letter subject. A topic without a stream is
// pubsub.ErrNotFound; a topic published to but without groups lists none.
//
// A server restart or a cut connection needs no application restart:
// nats.go redials every 250ms (plus jitter) for ever, publishes wait as
// described above, and subscriptions keep fetching once the connection and
// the consumers are back. Open fails with an error naming the servers if
// none answers within connect_timeout, or if JetStream is not enabled.
//
// NATS Server 2.9 (before 2.10) has three bugs the transport works around:
// interest-retention streams lose the messages not acknowledged yet when
// the server restarts (a plain nats.go client loses them too; 2.10.29
// does not), hence limits retention and the broker's purging there (see
// Topic mapping; the broker logs a warning when it connects to such a
// server); its pull consumers sometimes lose a request sent on an inbox
// that earlier requests used (the jetstream package's Messages and Consume do that), so
// the transport sends each fetch on an inbox of its own; and a
// redelivery that meets only requests of members that have gone is
// delivered as a new message, with delivery count 1 (its Attempt starts
// again), which the transport avoids for hand-backs by publishing copies
// instead of sending a negative acknowledgement, and by letting each fetch
// request end (rather than abandoning it) when a subscription closes. A
// retry's redelivery can still meet the third bug right after a member
// crashed with a request out; use NATS Server 2.10 or later.
//
// # Readiness
//
// Ping (pubsub.Client.Ping) reports the server unready while the
// connection is down, and otherwise asks JetStream for the account's
// information, within the caller's context. A connection closed or reset
// is noticed at once (measured through a fault proxy that cuts it: 8 to
// 16ms). A network that goes silent without closing shows when Ping's
// context ends, since JetStream does not answer (measured with a 1s
// timeout: 1.0s); nats.go itself gives the connection up only after
// maxPingsOut missed pings, 30 to 40s (a ping every 10s, three
// outstanding), and then reconnects. Ping reports ready again once nats.go
// has reconnected: it redials every 250 to 500ms, so within about half a
// second of the server becoming reachable (measured: 100 to 350ms). A link
// narrowed to half its throughput can make a Ping with a 1s timeout fail
// now and then (2 of about 500 in one run). TestNetworkFaults (build tag
// reliability) asserts 2s and 5s; TestSilentNetwork asserts the caller's
// timeout plus 1s, and 5s.
//
// # Errors
//
// Publish, Subscribe and CreateGroup validate names, options and messages
// before any I/O and return the pubsub sentinels (pubsub.ErrInvalidTopic,
// pubsub.ErrInvalidGroup, pubsub.ErrInvalidOption, pubsub.ErrInvalidMessage,
// pubsub.ErrMessageTooLarge for a message over max_message_bytes, counted
// with its headers) wrapped with details. After Close every call returns
// pubsub.ErrClosed. A cancelled context returns its error unwrapped;
// running out of request_timeout returns an error wrapping
// context.DeadlineExceeded and the last error seen. The dead-letter admin
// calls and DeleteGroup return pubsub.ErrNotFound for a group that does not
// exist, and ListGroups for a topic without a stream. JetStream's refusals are returned as *jetstream.APIError, wrapped
// with what was being done; use errors.As to read their codes. Broker.As
// gives the underlying *nats.Conn and jetstream.JetStream.
package nats
