// Package rabbitmq is Switchyard's RabbitMQ transport: a pubsub.Broker on
// AMQP 0-9-1, safe by default (durable topology, persistent messages,
// publisher confirms, mandatory copies), close to the raw client's speed,
// and surviving broker restarts without an application restart. It works
// with RabbitMQ 3.10 and later, 4.x included (see "RabbitMQ 3.x and 4.x").
//
// Open it with transport.Open(ctx, "amqp://guest:guest@localhost:5672/"), or
// with OpenURL or New and a Config; each returns a *pubsub.Client, so the
// portable layer (validation, the delivery loop, retries and their backoff,
// dead-letter policy, shutdown phases, observers) is package pubsub's, and
// this package does the broker I/O. A client holds three AMQP connections,
// each re-established by the client when lost: one for publishing, one for
// consuming (as RabbitMQ recommends: flow control that blocks a publishing
// connection then never stalls acknowledgements), and one for
// administration (declarations, probes, the dead-letter admin), so that an
// operation that makes the broker close its connection disturbs neither
// publishes nor subscriptions. Connection events (lost, restored, blocked
// by a resource alarm) are logged to the client's logger
// (pubsub.WithLogger). The client's As method accepts
// **amqp091.Connection and sets the current publishing connection (nil
// while it is down), which stays the client's: do not close it.
//
// # URL
//
//	amqp://USER:PASSWORD@HOST:PORT/VHOST?QUERY
//	amqps://USER:PASSWORD@HOST:PORT/VHOST?QUERY
//
//	amqp://USER:PASSWORD@HOST1:PORT1,HOST2:PORT2,HOST3:PORT3/VHOST?QUERY
//
// Port defaults to 5672 (amqps: 5671), vhost to "/"; percent-encode reserved
// characters in the user and password. The host part may list the nodes of
// a cluster, separated by commas, each with its port (see "Cluster nodes"). The query parameters, all optional,
// with their defaults:
//
//	prefetch=0                 consumer prefetch per subscription; 0: twice its concurrency (Config.Prefetch)
//	queue_type=quorum          quorum or classic, for group and retry queues (Config.QueueType)
//	confirm_timeout=30s        how long a call waits for the broker (Config.ConfirmTimeout)
//	connect_timeout=10s        bound on each connection attempt (Config.ConnectTimeout)
//	max_message_bytes=134217728  largest message Publish accepts (Config.MaxMessageBytes)
//	dead_letter_limit=100000   dead letters a group keeps (Config.DeadLetterLimit)
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
// to and consume from Switchyard topics. Topic and group names hold only
// letters, digits and "._-", so the transport separates the parts of its
// queue names with ':', which no topic or group name contains: the mapping
// is injective (topic "a" group "b.c" and topic "a.b" group "c" get
// different queues), and the number of ':' in a name tells a group's queue
// (one), its dead letters (two) and a retry queue (three) apart.
//
//   - A topic is a durable fanout exchange named after the topic. Publish
//     declares it on first use (once per connection). Topics beginning with
//     "amq." are reserved by RabbitMQ and refused with
//     pubsub.ErrInvalidTopic.
//   - A consumer group is a durable queue "<topic>:<group>" bound to the
//     topic's exchange, of the configured type (x-queue-type quorum by
//     default, classic with queue_type=classic), with x-dead-letter-exchange
//     "" and x-dead-letter-routing-key "<topic>:<group>:dead" (messages the
//     broker itself dead-letters, see below, go to the group's dead
//     letters; at least once on quorum queues: x-dead-letter-strategy
//     at-least-once), and x-overflow reject-publish (a length limit set by
//     a policy makes Publish fail rather than the broker drop messages).
//     CreateGroup and Subscribe declare it. A topic with no group has no
//     queue bound, and RabbitMQ drops what is published to it (the publish
//     is still confirmed); create groups before publishing.
//   - The dead letters of a group are the durable classic queue
//     "<topic>:<group>:dead", with x-max-length dead_letter_limit (100,000
//     by default; set when the queue is created) and x-overflow
//     reject-publish. It is declared before the group's queue when the group
//     is created, and by CreateGroup, which also re-creates it if it was
//     deleted; Subscribe to an existing group and dead-lettering never make
//     it, so that a deleted one shows as a failure (parked messages, an
//     error from ListDeadLetters) instead of a store silently emptied.
//   - Retries wait in queues shared by every group of the virtual host,
//     one per delay bucket and queue type: "switchyard:retry:<type>:<ms>"
//     (for example switchyard:retry:quorum:128), a durable queue with
//     x-message-ttl <ms>, x-dead-letter-exchange "" and no dead-letter
//     routing key, and x-expires <ms> plus 10 minutes (an unused retry
//     queue deletes itself; a client using it declares it again at least
//     every minute, which renews it), bound to a durable fanout exchange of
//     the same name. A retry copy is published to that exchange with the
//     group's queue as routing key; when its delay is over, the broker
//     dead-letters it through the default exchange by that routing key,
//     back to the group's queue. The queue type is part of the name because
//     queues of one name must be declared with equal arguments.
//   - Names longer than AMQP's 255 bytes (a long topic and a long group)
//     are cut to 238 bytes followed by "~" and 16 hex digits of the
//     SHA-256 of the full name; "~" occurs in no topic or group name.
//
// # Costs
//
// Measured on RabbitMQ 3.10.8 (a broker's file descriptors are often the
// scarcest resource: a few hundred quorum groups exhausted a broker
// limited to 927):
//
//   - Per group, quorum: 3 file descriptors (the queue's Raft log), plus
//     1 while its dead-letter queue holds messages. Classic: none while
//     idle, 1 per queue (group queue, dead-letter queue) holding messages.
//     One group queue and one dead-letter queue per group, whatever its
//     backoff.
//   - Per retry bucket: one queue and one exchange per virtual host and
//     queue type, shared by every group: 3 file descriptors for a quorum
//     queue, none for an idle classic one. Buckets are whole milliseconds
//     of the form ceil(2^(i/2)) (1, 2, 3, 4, 6, 8, 12, 16, 23, 32, 46, 64,
//     91, 128, 182, 256, ... ms); 53 cover 1ms to 24h, and the default
//     backoff (delays of 50ms to 30s) uses 19. Unused buckets delete
//     themselves after 10 minutes.
//   - Per client: 3 connections (sockets), and a channel per subscription.
//
// # Messages
//
// A message is an AMQP message with delivery mode 2 (persistent):
//
//   - Message.ID is the message_id property. A message from another client
//     without one gets the ID "amqp-" and 32 hex digits of a SHA-256 of its
//     content (body, properties other than message_id and expiration,
//     application headers): the same on every delivery of it, in every
//     group, and on its copies (retries, dead letters), which carry it as
//     their message_id. Messages of equal content get equal IDs.
//   - Message.Payload is the body, as it is.
//   - Message.Metadata entries are string headers, except "content-type",
//     which is the content_type property (typed topics set it from their
//     codec; an empty value stays a header); on delivery content_type comes
//     back as metadata "content-type".
//   - Header values of other types, from other clients, become text:
//     strings and byte arrays as they are; booleans true or false; integers
//     in decimal; floats as the shortest decimal that reads back (0.25,
//     1e+21); decimals in plain decimal notation with their scale ({scale
//     1, value 5} is 0.5); timestamps in RFC 3339, UTC; field tables as
//     JSON objects (keys sorted) and field arrays as JSON arrays, their
//     values converted the same way (decimals as JSON numbers, timestamps
//     and byte arrays as strings, void as null); void as the empty string.
//   - CloudEvents attributes (metadata "ce-id", "ce-type", ..., set by typed
//     topics) are headers "cloudEvents:id", "cloudEvents:type", ..., the
//     CloudEvents AMQP binding, so CloudEvents SDKs read them; metadata may
//     not use the "cloudEvents:" prefix itself.
//   - Message.Key is the header "x-switchyard-key" (absent when empty).
//   - The header "x-switchyard-attempt" carries the Attempt of the
//     transport's copies of a message (see Delivery semantics). Metadata
//     may not use it, "x-switchyard-key", nor the headers RabbitMQ sets
//     ("x-delivery-count", "x-acquired-count", "x-death",
//     "x-first-death-*", "x-last-death-*"); Publish refuses such messages
//     with pubsub.ErrInvalidMessage, as it does IDs, metadata keys and
//     content types longer than 255 bytes.
//
// # Delivery semantics
//
// Publish returns nil only after RabbitMQ confirmed every message (publisher
// confirms are always on): for a quorum queue, after a majority of its
// replicas wrote it to disk. All publishes of a client share one channel in
// confirm mode and each Publish call waits on the deferred confirmations of
// its own messages, so concurrent calls and the messages of a batch are
// pipelined; no lock is held while waiting. Messages the broker refuses
// (basic.nack) are listed in a *pubsub.PublishError (errors.As); the others
// were accepted. While the connection is down, Publish waits for it to come
// back; the messages whose confirmation was lost with the connection, and
// those not written yet, are published again on the next one, in the
// batch's order (so one may arrive twice), never reported as sent. All of
// this is bounded by the caller's context and ConfirmTimeout (default 30s),
// after which Publish returns an error (wrapping context.DeadlineExceeded
// for the timeout) and any subset of the messages may have been accepted.
// While RabbitMQ blocks the publishing connection (a memory or disk
// alarm), Publish waits before sending, bounded the same way. The broker
// closing the channel over a message (for example one over its
// max_message_size) fails that Publish and the others in flight on the
// channel.
//
// Subscribe declares the group if it does not exist, then probes its queue
// (a consumer on the admin connection that takes at most one message and
// hands it back untouched), and only then consumes on the consume
// connection: on RabbitMQ 3.x a consumer that attaches to a quorum queue
// just declared by another process, whose Raft member has not started yet,
// makes the broker close the whole connection with INTERNAL_ERROR (541).
// The probe meets that on the admin connection, and Subscribe retries
// such passing errors (a lost connection, a queue starting or just
// deleted) within its context and ConfirmTimeout. Twenty processes joining
// one new group at once, ten times over, all succeed, and their other
// subscriptions keep their connection.
//
// Each subscription consumes on a channel of its own with a prefetch of
// Config.Prefetch, twice its concurrency by default, and never below it. A
// small prefetch keeps small what a member holds when it stops or loses its
// connection, and shares a backlog evenly between members; on a quorum
// queue it bounds throughput, as each slot is held until the broker has
// applied the acknowledgement through the Raft log: on this project's
// benchmark machine the default (concurrency 10, prefetch 20) gives about
// 10,000 messages a second per subscription, and a prefetch of 1000 is as
// fast as a hand-tuned amqp091-go consumer. Raise Prefetch (or the
// concurrency) for throughput. Delivery is at least once: a message is
// acknowledged after its handler returned nil (or after its dead letter was
// stored). Messages of one Key are not kept in order (Features
// OrderingByKey is false): prefetch and concurrent handlers reorder them.
//
// Message.Attempt is the x-switchyard-attempt header (1 when absent) plus
// the deliveries of this copy that the broker counted: x-delivery-count on
// quorum queues (and on classic queues from RabbitMQ 4.3); on classic
// queues before 4.3 a redelivery is only flagged, and counts as one however
// many there were. The transport hands messages back so that the broker
// counts only what Switchyard means it to:
//
//   - Retry(delay, attempt) publishes a copy with x-switchyard-attempt set
//     to attempt to the retry exchange of delay's bucket (a delay is
//     rounded up to its bucket: it waits at least the delay asked for and
//     at most √2 times as long plus 1ms; delays are capped at 24 hours; a
//     delay of 0 goes straight back to the group's queue), mandatory and
//     confirmed, and only then acks the original. The delay and the
//     attempt count thus survive a crash of the consumer: at worst (a crash
//     between the confirm and the ack) the message is delivered twice. One
//     TTL per queue means no head-of-line blocking: the copies of a bucket
//     expire in the order they entered it, and messages waiting out a
//     backoff never hold up the group (as many may wait as the broker
//     holds). A copy returned unroutable (its retry queue was deleted, or
//     had expired) makes the client declare the queue again and publish
//     once more. If the copy still cannot be published, the original is
//     returned to the queue when the delay has passed (basic.reject with
//     requeue, which quorum queues count as a failed delivery, so that
//     Attempt still grows; classic queues before 4.3 only flag it), and
//     the loop's observers see the settlement fail with the reason.
//   - Release (a handler that returned an error wrapping pubsub.ErrClosed
//     while its subscription stopped) publishes a copy with the same
//     x-switchyard-attempt to the group's queue through the default
//     exchange, mandatory and confirmed, and acks the original: no version
//     counts it. If the copy is not accepted, the message is returned with
//     basic.nack (requeue), which RabbitMQ counts before 4.3.
//   - A member that crashes, or whose connection is lost, has the messages
//     it held returned by the broker, which counts a delivery for each on
//     quorum queues: that is the "one for a run cut off by a crash" of
//     DESIGN line 5, and it also counts, unavoidably, for the messages the
//     member had fetched ahead and not handed to a handler (at most the
//     prefetch, twice the concurrency by default).
//
// Shutdown, in phases. Subscription.Close (and the broker's Shutdown, for
// each subscription) first stops taking messages, waits for the handlers
// running and settles their messages, while publishing still works (so
// handlers that publish, and dead-lettering, succeed). Then the transport
// hands back, untouched, what the member still holds: it asks the broker
// for a message on the consumer's channel (a basic.get, answered only
// after the queue processed the acknowledgements it received before and
// sent the deliveries they made room for), cancels the consumer, keeps what arrives
// until the cancel is acknowledged (and what RabbitMQ sends for the
// consumer's tag just after, which a consumer of the direct reply-to
// pseudo-queue under the same tag receives), and hands all of it back: a
// copy of each, with its Attempt, published to the group's queue on the
// consumer's own channel (mandatory, confirmed; on a quorum queue the
// confirmations come after the broker applied every acknowledgement sent
// before on the channel), then one acknowledgement for all (basic.ack
// multiple). Measured before this: closing a subscription with prefetch
// 512 and concurrency 10 returned its 49 fetched-ahead messages to the
// quorum queue, which came back with Attempt 2; now they come back with
// Attempt 1. Copies that are not accepted are returned with basic.nack.
// Finally the channel closes. The broker's Shutdown then flushes the
// publishes still waiting and closes the connections; after it every call
// returns pubsub.ErrClosed.
//
// Dead letters belong to their group. DeadLetter publishes the dead letter
// (the message with the reason, time, original topic, group and attempts
// in metadata) to the group's dead-letter queue through the default
// exchange, mandatory and confirmed, and only then acks the original. A
// basic.return (the dead-letter queue does not exist) or a basic.nack (it
// holds dead_letter_limit messages) is an error: the message stays
// unacknowledged and the delivery loop parks it, storing again with
// backoff, without running its handler again. The admin calls
// (pubsub.DeadLetterAdmin) work on the admin connection; a group whose
// queue does not exist is pubsub.ErrNotFound:
//
//   - ListDeadLetters reads up to limit dead letters, oldest first, with a
//     consumer that does not acknowledge them, then returns them all with
//     one basic.nack (requeue), which puts them back in their places. The
//     dead-letter queue is a classic queue because of this: a classic queue
//     keeps the order and counts no delivery for it, whereas a quorum
//     queue counts one per listing, and RabbitMQ 4 drops (or dead-letters)
//     a message counted 20 times: a dead letter would vanish after 20
//     listings. The dead letters a listing holds are invisible to another
//     listing of the same group at the same time, which may return fewer.
//   - ReplayDeadLetters publishes, for each chosen dead letter, the copy
//     that driver.Revive makes (same ID, key, payload and metadata, without
//     the dead-letter metadata) to the group's queue through the default
//     exchange, mandatory and confirmed, so that no other group gets it and
//     its next delivery has Attempt 1; then it removes the dead letter.
//     If the admin connection is lost midway, the call starts again, so a
//     dead letter may be replayed twice.
//   - PurgeDeadLetters purges the queue, or removes the dead letters with
//     the IDs given.
//
// Messages the broker dead-letters itself (a quorum queue's delivery limit,
// see below; an expiry or length limit set by a policy) also land in the
// group's dead letters; they carry no Switchyard metadata, so the listing
// fills in the reason ("rabbitmq: dead-lettered by the broker
// (delivery_limit)"), the time from x-death, the topic, the group and the
// attempts.
//
// ListGroups (pubsub.GroupLister) tells only whether a topic exists. AMQP
// 0-9-1 can look up an exchange or a queue by name (a passive declare)
// but cannot list the queues bound to an exchange, so a topic's groups
// cannot be discovered over it. ListGroups returns pubsub.ErrNotFound when
// the topic's exchange does not exist, and otherwise an error wrapping
// errors.ErrUnsupported. RabbitMQ's management plugin has an HTTP API that
// lists bindings and counts messages, but this transport speaks only AMQP:
// the API is another endpoint, with its own credentials and permissions
// (a user tag), of a plugin that not every broker runs (this project's test
// broker does not), and the transport sends AMQP credentials nowhere else.
// To see a topic's groups and what they hold, on the broker's host:
//
//	rabbitmqctl -q list_bindings -p VHOST source_name destination_name | awk -F'\t' '$1 == "TOPIC" {print $2}'
//	rabbitmqctl -q list_queues -p VHOST name messages_ready messages_unacknowledged | grep -F 'TOPIC:'
//
// A group's queue "TOPIC:GROUP" holds its backlog (ready, and
// unacknowledged: held by members), its queue "TOPIC:GROUP:dead" its dead
// letters; messages waiting out a retry are in the shared retry queues,
// counted in neither.
//
// A broker restart (rabbitmqctl stop_app/start_app, or the whole server)
// needs no application restart: each connection is redialled with backoff
// (100ms doubling to 5s, with jitter), publishes wait as described above,
// and subscriptions declare their group again, probe it and resume
// consuming; Receive simply blocks during the outage. Open fails with a
// clear error, naming host:port, if the broker is unreachable or silent for
// ConnectTimeout (default 10s).
//
// # Readiness
//
// Ping (pubsub.Client.Ping) reports the broker unready as soon as one of
// the client's three connections is lost, without I/O of its own. A
// connection closed or reset by the network or the broker is noticed at
// once (measured through a fault proxy that cuts every connection: 4 to
// 100ms, under load). One that goes silent without closing is given up
// once nothing arrived for 1.5 heartbeat intervals (amqp091-go's read
// deadline: 15s with the default heartbeat of 10s; measured 1.5s with
// heartbeat=1). Ping reports ready again once all three connections are
// redialled and the publishing channel is open: within the longest redial
// pause (5s) plus a handshake of the broker becoming reachable (measured:
// 1.0 to 4.8s after a 10s outage). TestNetworkFaults (build tag
// reliability) asserts 2s and 10s; TestSilentNetwork asserts 2.5s with
// heartbeat=1.
//
// # Long handlers and consumer_timeout
//
// RabbitMQ closes a consumer's channel (PRECONDITION_FAILED, "delivery
// acknowledgement timed out") when one of its messages stays
// unacknowledged longer than the server's consumer_timeout (30 minutes by
// default; RabbitMQ 3.10 checks it on each channel tick, every minute, so
// the channel closes up to a minute after the limit) and returns every
// message the channel held to the queue, counted as a delivery. The
// subscription then consumes again on a new channel by itself (a warning is
// logged) and the broker delivers those messages again. What a member
// does with a redelivered message whose first run is still in its hands:
//
//   - while that run is still going, the redelivery is held back, not
//     handed to a handler: no message runs twice at once in one member;
//   - if the run succeeds, its acknowledgement (lost with the old channel)
//     is made on the redelivery instead: one run, outcome acked;
//   - if the run fails (or the subscription hands it back), the held
//     redelivery is handled next, with the broker's count in its Attempt
//     (Attempt 2 after one timeout);
//   - if the redelivery arrives only after the run succeeded (a
//     subscription with no free handler slot does not take it earlier), the
//     run's settlement reports the lost acknowledgement
//     (pubsub.OutcomeSettleFailed), and the redelivery is acked without
//     running the handler (remembered for 10 minutes).
//
// With several members, the broker may deliver the message again to
// another member, whose handler then runs while the first still does: a
// duplicate, as at-least-once delivery allows. To let handlers run longer,
// raise consumer_timeout on the server (rabbitmq.conf:
// consumer_timeout = 3600000, in milliseconds; or in advanced.config
// {rabbit, [{consumer_timeout, undefined}]} to disable it). Per queue,
// the x-consumer-timeout argument or policy key exists only from RabbitMQ
// 3.12. Tested by TestConsumerTimeout (build tag reliability) with
// consumer_timeout = 10000 on a node of its own.
//
// # Cluster nodes
//
// With several addresses in the URL, each connection (publish, consume,
// admin) goes to the first node that accepts it, trying them in order, each
// try bounded by ConnectTimeout; Open fails only when none accepts, with an
// error listing each node's failure. When a connection is lost, its
// reconnection tries the node after the one it was on first, then the
// others in turn, every round with the backoff above. The nodes share the
// user, password, virtual host and query parameters; every address needs
// its port (net/url reads the text after the last ':' as a port), and IPv6
// literals may only be a single host. Errors name the addresses, never the
// password. The client does not prefer a queue's leader: RabbitMQ forwards
// to it within the cluster. Group queues are quorum queues by default,
// declared without x-quorum-initial-group-size, so RabbitMQ places a
// replica on each cluster node (on 3.10, all three nodes of a three-node
// cluster, as TestClusterFailover checks): a group survives the loss of a
// minority of them. Publishes during a
// failover wait or fail as for a restart (never reported as sent without a
// confirm); subscriptions resume on the node they reconnect to. While a
// quorum queue elects a new leader, RabbitMQ may refuse publishes
// (basic.nack): Publish returns a *pubsub.PublishError for them, and the
// caller publishes them again. Measured on a three-node cluster of RabbitMQ
// 3.10.8 on one 2-core machine (TestClusterFailover, build tag
// reliability; 20,000 messages, two groups, the leader of each group's queue
// stopped in turn mid-stream): 0 lost in each group, 159 and 736
// duplicates, 600 messages refused and published again, 1.2 to 4.8 s from
// a node's exit to the first delivery of a message sent after it.
//
// # RabbitMQ 3.x and 4.x
//
// The transport is correct by design on both, and tested on 3.10.8:
//
//   - Delivery counting. Quorum queues count every return of a message
//     (basic.nack and basic.reject with requeue, a closed channel or lost
//     connection) in x-delivery-count on 3.x and 4.0 to 4.2; from 4.3 they
//     count only failed deliveries (basic.reject with requeue, not
//     basic.nack). The transport never returns a message to count it,
//     except the Retry fallback, which uses basic.reject so that every
//     version counts it, and never relies on a return not being counted:
//     retries carry their Attempt in a copy's header, hand-backs are
//     copies with their Attempt. A message redelivered with the redelivered
//     flag but no count is taken as not counted on a quorum queue (4.3's
//     basic.nack), as counted once on a classic one.
//   - Delivery limit. RabbitMQ 4 gives quorum queues a delivery limit of 20
//     by default (3.x none, unless a policy sets one): a message counted
//     more often is dead-lettered, or dropped when the queue has no
//     dead-letter target. Group queues dead-letter into the group's
//     dead-letter queue (at least once), so such a message is kept and
//     listed, never dropped. In normal operation the transport returns no
//     message to its group queue, and the delivery loop dead-letters a
//     message after WithMaxAttempts (default 5) anyway: the limit is only
//     reached by a message that crashes its consumers 20 times, which is
//     what it is for.
//   - Dead letters live in a classic queue (see ListDeadLetters), declared
//     with x-queue-type classic explicitly, so that a virtual host whose
//     default queue type is quorum (a 4.x option) changes nothing. On 4.x
//     classic queues are not replicated; they are durable and their
//     persistent messages survive a restart.
//   - RabbitMQ 3.x holds back the acknowledgements of a quorum-queue
//     consumer beyond 32 commands the queue has not applied yet, and drops
//     them if the channel closes first (the messages then come back, counted,
//     as duplicates); and it may take back, counted, a message it was
//     delivering to a consumer while the consumer was cancelled. The
//     shutdown sequence above (the basic.get, the copies on the consumer's
//     channel, the single acknowledgement) avoids both. What remains, on
//     3.x quorum queues: a message published to an idle member at the very
//     moment its subscription closes may come back with Attempt 2; and a
//     subscription that acked more than 32 messages in its last
//     milliseconds and holds nothing to hand back may see some of them
//     delivered again.
//
// # Errors
//
// Publish, Subscribe and the admin calls validate names, options and
// messages before any I/O and return the pubsub sentinels
// (pubsub.ErrInvalidTopic, pubsub.ErrInvalidGroup, pubsub.ErrInvalidOption,
// pubsub.ErrInvalidMessage, pubsub.ErrMessageTooLarge for a message over
// MaxMessageBytes) wrapped with details. DeleteGroup and the dead-letter
// admin return pubsub.ErrNotFound for a group that does not exist, and
// ListGroups for a topic whose exchange does not exist (and an error
// wrapping errors.ErrUnsupported for one that does). Publish
// returns a *pubsub.PublishError with the indexes of the messages the
// broker refused. After Close every call returns pubsub.ErrClosed. A
// cancelled context returns its error unwrapped; running out of
// ConfirmTimeout returns an error wrapping context.DeadlineExceeded.
// RabbitMQ's refusals (for example PRECONDITION_FAILED when a group's queue
// exists with another queue type) are returned as *amqp091.Error, wrapped
// with what was being done; use errors.As to read the code.
//
// # Migration from the previous naming
//
// Earlier versions of this transport named a group's queue "<topic>.<group>",
// its retry queues "<topic>.<group>.retry.<ms>", and published dead letters
// to the topic "<topic>.dlq", whose group of the same name kept them in
// "<topic>.dlq.<group>". This version neither uses nor deletes those
// objects: its names contain ':' and never meet them. An old group queue
// stays bound to its topic's exchange and keeps receiving every message
// published to the topic, so it grows until it is deleted. To move a group:
//
//  1. Create the new group while the old consumers still run, with
//     CreateGroup from this version (or by starting its subscribers): from
//     then on each message is stored in both the old and the new queue.
//  2. Stop the old consumers once they have worked through what the old
//     queue held before step 1, then start this version's consumers. The
//     messages published between steps 1 and 2 are handled by both
//     versions (at-least-once delivery: handlers must tolerate that).
//  3. Wait for the old retry queues to empty (their copies go back to the
//     old group queue; they delete themselves 10 minutes after their last
//     use), then delete the old group queue.
//  4. Move the old dead letters into the group's dead letters, where
//     ListDeadLetters, ReplayDeadLetters and PurgeDeadLetters reach them
//     (they carry the same metadata headers), with a dynamic shovel (or
//     read them with the previous version's tools), then delete the old
//     dead-letter queue.
//  5. The exchange "<topic>.dlq" holds no messages and costs no file
//     descriptor: leave it, or delete it with the management UI or
//     rabbitmqadmin (rabbitmqctl cannot delete exchanges).
//
// The commands, for topic orders and group billing:
//
//	rabbitmqctl -q list_queues name messages consumers | grep -v ':'   # the old objects
//	rabbitmqctl delete_queue 'orders.billing'                          # step 3
//	rabbitmqctl delete_queue 'orders.billing.retry.128'                # if still there
//	rabbitmq-plugins enable rabbitmq_shovel                            # step 4
//	rabbitmqctl set_parameter shovel move-orders-billing-dead '{"src-protocol": "amqp091",
//	  "src-uri": "amqp://", "src-queue": "orders.dlq.billing", "src-delete-after": "queue-length",
//	  "dest-protocol": "amqp091", "dest-uri": "amqp://", "dest-queue": "orders:billing:dead"}'
//	rabbitmqctl delete_queue 'orders.dlq.billing'                      # once the shovel is done
//	rabbitmqadmin delete exchange name='orders.dlq'                    # step 5, optional
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
// consumer's memory, lost on a crash). Switchyard needs pipelined deferred
// confirmations, mandatory copies whose returns are matched to their
// publishes, broker-side retry queues with attempt headers,
// per-subscription prefetch, a consumer cancel that loses nothing, and its
// own reconnection, which are each a few lines on amqp091-go and would
// fight watermill-amqp's abstractions. amqp091-go's experimental automatic
// recovery is not used either: it reuses channel objects across
// connections, where deferred confirmations and delivery tags of the lost
// connection must not be mistaken for new ones. watermill-amqp appears only
// in this package's benchmark (BenchmarkEndToEnd/watermill-amqp, with
// ConfirmDelivery on) as a reference point; package pubsub/watermillbridge
// adapts any Switchyard broker, this one included, to watermill's
// interfaces.
package rabbitmq
