// Command switchyard is the operator's command line for Switchyard: it
// looks inside a pub/sub system and measures it, the same way on every
// broker that transport.Open knows (RabbitMQ, Google Cloud Pub/Sub, NATS
// JetStream, and the in-process mem://), using only Switchyard's public API.
//
// Install it with
//
//	go install github.com/switchyard-go/switchyard/cmd/switchyard@latest
//
// Commands (each takes --url, default $PUBSUB_URL, else mem://):
//
//	switchyard publish TOPIC [MESSAGE...]       publish from arguments, --file or stdin (--json objects); prints IDs
//	switchyard tail TOPIC [--group G] [-n N]     print messages as they arrive (--json: one object per line)
//	switchyard dlq list|show|replay|purge ...    a group's dead letters
//	switchyard groups create|delete|list ...     consumer groups, with backlog and dead letters where the broker tells
//	switchyard bench [--matrix [URL...]]         throughput and latency percentiles; --matrix charts several brokers
//
// A usage error exits 2 and prints the usage; a runtime error (an
// unreachable broker, a bad URL, an unknown topic or group) exits 1 with one
// line, passwords redacted; Ctrl-C ends tail normally (exit 0, its
// throw-away group deleted) and any other command with 130.
//
// mem:// is the in-process broker: it lives inside one switchyard process,
// so each command on mem:// sees only what it did itself. It serves bench
// and trying the commands out; use a networked broker to look at other
// processes' messages.
//
// "switchyard <command> --help" documents each command.
package main
