// Package killed holds the reliability case "killed consumer processes"
// (issue 15, case 2). It has no code of its own: the test, built only with
// the tag reliability, re-executes its own binary as the members of one
// consumer group and SIGKILLs them in the middle of a handler.
//
// The scenario, the same for every broker that keeps messages outside the
// process (RabbitMQ, NATS JetStream, the Pub/Sub emulator):
//
//   - three member processes subscribe to one group of a fresh topic, four
//     handlers each; each member writes one record per handler start and one
//     per handler completion (message ID and Attempt) to a pipe of its own,
//     each record a single write of less than PIPE_BUF bytes, so a record is
//     either in the pipe whole or not at all, and the parent drops an
//     unterminated tail;
//   - the parent publishes 5,000 messages with confirms; a few of them are
//     traps, whose handler blocks until the parent releases it, so when a
//     trap starts in a member the parent SIGKILLs that member while it is
//     inside the handler (by construction, not by timing), starts a
//     replacement, and releases the trap when it starts again elsewhere;
//   - the test asserts: every confirmed message completed at least once;
//     every message in flight in a killed member (started, not completed,
//     read from its pipe after its death) completed later in another member,
//     with the Attempt its transport documents for a run cut off by a crash;
//     no Attempt ever above 1 plus the kills so far (no handler fails); no
//     message handled by two live members at once; and every duplicate
//     completion explained by a kill. It reports duplicates and the time
//     from each kill to the completion elsewhere of what the victim held.
//
// What each broker shows, as its transport documents it:
//
//   - RabbitMQ (quorum group queue, the default): a victim's connection dies
//     with it and the broker returns what it held at once, counting a
//     delivery for each (x-delivery-count): the cut-off run comes back with
//     Attempt 2, and so do the messages it had fetched ahead (at most its
//     prefetch, twice its concurrency) though no handler ran them.
//   - NATS JetStream, run with ack_wait=5s (the default 30s would make each
//     recovery last 30s): what a victim held comes back after ack_wait,
//     counted by JetStream, so with Attempt 2, fetched-ahead messages too
//     (at most prefetch=256 per victim).
//   - The Pub/Sub emulator: what a victim held comes back once its lease
//     lapses (the ack deadline, 10s), behind the emulator's backlog; the
//     transport does not trust an emulator's delivery count, so Attempt
//     stays 1 (DESIGN allows "at most one" for a crash). Real Pub/Sub
//     counts deliveries through the group's dead-letter policy; that is not
//     covered here.
//
// Run it against the machine's brokers (RabbitMQ on 127.0.0.1:5672, NATS
// with JetStream on 127.0.0.1:4222, or SWITCHYARD_AMQP_URL and
// SWITCHYARD_NATS_URL; the Pub/Sub emulator runs inside the test):
//
//	go test -race -tags reliability -run '^TestKilledMembers' ./internal/reliability/killed/
//
// Each broker's run takes well under two minutes; -v prints the figures.
package killed
