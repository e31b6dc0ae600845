// Package outbox is a transactional outbox and an idempotent inbox for
// services that keep their state in a SQL database, on any Switchyard
// broker.
//
// The commonest way services lose events is the dual write: the database
// commits and then the publish fails (or the process dies), or the other
// way round. With an outbox the event is written in the same transaction as
// the state it describes, and a relay publishes it after commit: an event
// is published if and only if its transaction committed, at least once. An
// inbox is the consumer's half: the handler's effects and the record that
// the message was handled commit together, so a redelivered message has
// its effects once.
//
// The package uses database/sql only and works with PostgreSQL (tested
// with pgx's stdlib driver) and SQLite (tested with modernc.org/sqlite);
// New picks the dialect from the driver (Config.Dialect to choose).
//
//	db, err := sql.Open("pgx", databaseURL)          // or "sqlite"
//	broker, err := transport.Open(ctx, brokerURL)    // any transport
//	err = outbox.Migrate(ctx, db, outbox.Config{})   // or run the SQL of Schema
//	ob, err := outbox.New(db, outbox.Config{Publisher: broker})
//	go ob.Run(ctx)                                   // a relay; run one in each process
//
//	placed := pubsub.NewTopic[OrderPlaced]("orders.placed")
//	tx, err := db.BeginTx(ctx, nil)
//	_, err = tx.ExecContext(ctx, `INSERT INTO orders (id, total) VALUES ($1, $2)`, id, total)
//	err = placed.Publish(ctx, ob.Tx(tx), OrderPlaced{ID: id, Total: total}, pubsub.WithKey(id))
//	err = tx.Commit()                                // published after commit; never if rolled back
//
//	// A consumer whose effects happen once per message, redeliveries included:
//	sub, err := broker.Subscribe(ctx, "orders.placed", "billing",
//		outbox.Idempotent(db, "billing", func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
//			_, err := tx.ExecContext(ctx, `INSERT INTO invoices (order_id) VALUES ($1)`, m.Key)
//			return err
//		}))
//
// # Tables
//
// Migrate creates two tables (names in Config.Table and Config.InboxTable)
// with their indexes; Schema returns the same statements for migration
// tools. On PostgreSQL:
//
//	CREATE TABLE switchyard_outbox (
//		id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
//		topic      TEXT NOT NULL,
//		msg_key    TEXT NOT NULL,            -- '' for none
//		msg_id     TEXT NOT NULL,
//		metadata   TEXT NOT NULL,            -- JSON object, '' for none
//		payload    BYTEA NOT NULL,
//		created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
//		sent_at    TIMESTAMPTZ,              -- published
//		failed_at  TIMESTAMPTZ,              -- rejected by the broker, with error
//		error      TEXT
//	);
//	-- pending rows by id; pending rows by topic, key and id; published rows by time
//	CREATE TABLE switchyard_inbox (
//		grp TEXT NOT NULL, msg_id TEXT NOT NULL,
//		received_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
//		PRIMARY KEY (grp, msg_id)
//	);
//
// SQLite's tables have the same columns (times as Unix microseconds), and
// the outbox two more for the relays' leases (lease_owner, lease_until).
// PostgreSQL 12 or later is needed; SQLite 3.35 or later. Keep the
// identity's sequence at CACHE 1 (its default): ordering relies on ids
// being drawn in order.
//
// # Publishing
//
// Outbox.Publish stores messages in the caller's *sql.Tx; Outbox.Tx wraps a
// transaction as a pubsub.Publisher, so that typed topics (pubsub.Topic[T])
// publish through it with their codec and CloudEvents attributes. Publish
// validates the topic and messages and sets missing IDs before it stores
// anything; the relay publishes each message with its stored ID, every
// time, so consumers (and Idempotent) can deduplicate.
//
// # Relays
//
// Outbox.Run is a relay: it claims the oldest committed rows in batches
// (Config.BatchSize, default 200), publishes them through Config.Publisher,
// grouped by topic (one Publish per topic per batch), and marks a row
// published only after Publish returned nil for it; a *pubsub.PublishError
// marks the others. Any number of relays may run, in one process or many:
//
//   - PostgreSQL: a relay locks its batch with SELECT ... FOR UPDATE SKIP
//     LOCKED in a transaction that it holds while it publishes, so other
//     relays take other rows; the transaction's
//     idle_in_transaction_session_timeout (Config.Lease, 30s) is the lease:
//     if the relay hangs, PostgreSQL ends its session and its rows go to the
//     others; if its process dies, at once. Writers are never blocked by a
//     relay.
//   - SQLite: a relay writes a lease (owner and expiry, Config.Lease) on its
//     batch in one short statement, publishes with no transaction open, and
//     marks the rows in another; a relay that dies leaves its rows to the
//     others when the lease expires (one that stops cleanly gives them back
//     at once).
//
// A relay is woken at once by Publish through the same Outbox (it looks
// again after 100µs, 200µs, ... since rows are stored before their
// transaction commits), and otherwise polls every Config.PollInterval
// (500ms), which is how rows stored by other processes are found: run a
// relay in every process that publishes for the lowest latency. Under load
// it publishes full batches back to back. After a failed Publish it backs
// off (100ms doubling to 2s); transactions keep committing meanwhile, and
// the backlog drains when the broker is back. Published rows are deleted
// after Config.Retention (1h; NoRetention deletes them at once).
//
// # Ordering
//
// Per topic and key, relays publish messages in the order their
// transactions committed, and in the order given within one transaction.
// Precisely: a relay publishes a message only after every message of the
// same topic and key that committed before it was published or rejected,
// and never while such a message is held by another relay. This holds
// although ids are drawn before commit: Publish with a key takes a
// transaction-scoped lock on the key (PostgreSQL: pg_advisory_xact_lock,
// taken before the rows' ids are drawn; SQLite: its one writer), so a
// transaction that publishes to a key draws its ids only after every
// earlier transaction of that key ended, and per key id order is commit
// order; a lower id of the key can never commit after a higher one. The
// cost is that transactions publishing to one key are serialized from
// their Publish to their end; take keys in the same order everywhere to
// avoid deadlocks (PostgreSQL aborts one of two such transactions).
// Messages of different keys, or without a key, have no order between them
// (relays go oldest first).
//
// A key's order can break only when (1) a broker accepts a later message of
// a key and refuses an earlier one in the same Publish (a PublishError
// naming the earlier one): that one is published again afterwards; (2) a
// relay hung past its lease while publishing, and another published the
// same rows and later ones meanwhile; (3) a rejected row is retried by hand
// (below). Redelivery after a crash repeats messages already published (a
// consumer may see K1 K2 K1 K2); the first arrivals stay in order. The
// broker's own delivery order is the broker's (see each transport).
//
// # Delivery semantics
//
// At least once. A message is published once in the normal case, also with
// several relays; it is published again when a relay stops between Publish
// and marking its rows (a crash, a lost database connection, a cancelled
// Run whose Publish was in progress) or loses its lease. Make consumers
// idempotent, for example with Idempotent.
//
// A message the broker refuses as invalid even alone (pubsub.ErrMessageTooLarge,
// ErrInvalidMessage, ErrInvalidTopic) is "rejected": its row gets failed_at
// and the error, it is never published, it is logged at Error and reported
// to Observer.OnRelayed, and later messages of its key go on. Rejected rows
// stay until deleted by hand:
//
//	SELECT id, topic, msg_id, error FROM switchyard_outbox WHERE failed_at IS NOT NULL;
//	UPDATE switchyard_outbox SET failed_at = NULL, error = NULL WHERE id = 42; -- publish again
//	DELETE FROM switchyard_outbox WHERE failed_at IS NOT NULL;
//
// # Inbox
//
// Idempotent wraps a TxHandler as a pubsub.Handler: each delivery runs in a
// transaction that first records (group, message ID) in the inbox table; a
// delivery whose ID is recorded is acknowledged without running the
// handler, and a handler that fails rolls its record back with its
// effects. Records are deleted after WithInboxRetention (24h): a duplicate
// arriving later runs again.
//
// # Observability
//
// Observer is told each relayed message's outcome (Published, Failed,
// Rejected) with its lag from storing to the end of Publish, the pending
// rows every Config.StatsInterval, and the inbox's duplicates. Package
// oteloutbox turns them into OpenTelemetry metrics. The relay publishes
// through Config.Publisher, so a broker instrumented with otelpubsub traces
// and counts relayed messages like any other publish. Pending gives the
// backlog for health checks.
//
// # Errors
//
// New and Schema return errors wrapping pubsub.ErrInvalidOption, joined,
// for every bad Config field; Publish returns pubsub.ErrInvalidTopic or
// pubsub.ErrInvalidMessage before any I/O, and the database's errors
// wrapped ("outbox: store messages: ..."), context errors unwrapped. Run
// returns nil when its context ends and an error wrapping pubsub.ErrClosed
// when the Publisher is closed; it logs and retries everything else.
// Idempotent panics on a nil db or handler, an empty group or a bad option,
// as a programming error.
//
// # Tests
//
// The package's tests run against the PostgreSQL of SWITCHYARD_POSTGRES_URL
// (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable, a
// schema of their own per test; skipped if unreachable, failed under
// CI=true) and SQLite files. -short shrinks the crash and multi-relay flows
// from 10,000 to 2,000 messages and the broker outage from 10s to 2s. The
// RabbitMQ variants are behind the build tag "rabbitmq". Benchmarks:
//
//	go test -run '^$' -bench Outbox ./pubsub/outbox
package outbox
