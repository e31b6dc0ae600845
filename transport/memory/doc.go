// Package memory is Switchyard's in-process broker, for tests and
// single-process applications. It gives the full semantics of package pubsub
// (consumer groups, retries with backoff, dead letters per group with their
// admin, drain) without a server. New and OpenURL return a *pubsub.Client.
//
// # URL
//
//	mem://[NAME][?max_message_bytes=N&group_capacity=N&dead_letter_capacity=N]
//
// transport.Open("mem://NAME") returns a new handle on the process-wide hub
// NAME, so services opened from the same configuration in one process meet;
// "mem://" is the hub "default". New(Config{}) makes a private hub.
//
// # Topic mapping
//
// Topics and groups are entries in the hub, made on first use: a topic on
// first Publish, CreateGroup or Subscribe; a group on CreateGroup or first
// Subscribe. Publishing to a topic with no group keeps nothing. Each group
// has its own dead letters; DeleteGroup removes a group with its messages and
// dead letters.
//
// # Delivery semantics
//
// Publish returns once the batch is in every group of the topic. A group
// holds at most Config.GroupCapacity messages (waiting, in flight, and
// waiting for a redelivery); Publish blocks while any group of the topic is
// full, until its context ends. A batch enters every group or none, and all
// groups see one topic's messages in the same order.
//
// Messages with the same Key are delivered to a group one at a time, in
// publish order, across all its members and with any concurrency; a message
// that failed holds its key back until it is redelivered (so a key's order
// is kept through retries). Redelivery delays are timers in the process.
// Attempt counts exactly what DESIGN.md asks: failed runs (Retry), never a
// hand-back (Release, or a member that closes with messages it took but did
// not handle). The hub, its groups and their messages last as long as the
// process. Messages are copied on Publish and on each delivery; handlers may
// modify them freely.
//
// Dead letters: a group keeps up to Config.DeadLetterCapacity (10,000 by
// default), oldest first, until they are replayed (to that group only, at
// the back of its queue, Attempt 1) or purged. When they are full, storing
// one fails and the delivery loop parks the message until there is room.
//
// Groups: ListGroups reports every group of a topic with its exact backlog
// and dead-letter count.
//
// # Errors
//
// Publish returns pubsub.ErrMessageTooLarge for a message over
// Config.MaxMessageBytes (10 MB by default, Pub/Sub's limit) or a batch
// over Config.GroupCapacity, the usual pubsub validation errors, the
// context's error while blocked, and pubsub.ErrClosed after Close. The admin
// calls return pubsub.ErrNotFound for a group that does not exist.
package memory
