// Package memory is Switchyard's in-process broker, for tests and
// single-process applications. It gives the full semantics of package pubsub
// (consumer groups, retries with backoff, dead letters, drain) without a
// server.
//
// # URL
//
//	mem://[NAME][?max_message_bytes=N&group_capacity=N]
//
// transport.Open("mem://NAME") returns a new handle on the process-wide hub
// NAME, so services opened from the same configuration in one process meet;
// "mem://" is the hub "default". New(Config{}) makes a private hub.
//
// # Topic mapping
//
// Topics and groups are entries in the hub, made on first use: a topic on
// first Publish, CreateGroup or Subscribe; a group on CreateGroup or first
// Subscribe. Publishing to a topic with no group keeps nothing. ListGroups
// (pubsub.GroupLister) knows every topic used in the process and tells each
// group's backlog and dead-letter count exactly.
//
// # Delivery semantics
//
// A group holds at most Config.GroupCapacity messages (waiting, in flight,
// and waiting for a redelivery); Publish blocks while any group of the topic
// is full, until its context ends. Dead-letter groups count too: a group's
// dead letters that nobody reads ("<topic>.dlq", same group name) fill up
// after GroupCapacity of them, and dead-lettering then waits for room. A batch enters every group or none, and
// all groups see one topic's messages in the same order. Messages with the
// same Key are delivered to a group one at a time, in publish order, across
// all its members and with any concurrency; a message that failed holds its
// key back until it is redelivered (so a key's order is kept through
// retries). Redelivery delays are timers in the process: the hub, its groups
// and their messages last as long as the process. Messages are copied on
// Publish and on each delivery; handlers may modify them freely.
//
// # Errors
//
// Publish returns pubsub.ErrMessageTooLarge for a message over
// Config.MaxMessageBytes (10 MB by default, Pub/Sub's limit) or a batch
// over Config.GroupCapacity, the usual pubsub validation errors, the
// context's error while blocked, and pubsub.ErrClosed after Close.
package memory
