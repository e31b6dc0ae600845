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
//	switchyard soak [--duration D] [--churn D]   a long fixed-rate load with members leaving and joining:
//	                                             lost per group; RSS, goroutines, heap: flat or growing
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
// # Soak
//
// soak is the reliability suite's long case (issue 15, case 7): bench's
// load at a fixed rate for --duration while one member at a time leaves
// (Subscription.Close) and a new one joins its group every --churn. It
// reports, every --report and at the end, published (confirmed) and
// received per group, lost (confirmed messages a group never received
// after the drain: must be 0), duplicates, and this process's RSS (from
// /proc/self/status VmRSS, or runtime/metrics where /proc is missing: the
// record names the source), goroutines, heap in use and live heap at the
// start, the end and their maximum, with a verdict: flat, growing (the
// median of the second half of the samples after a warm-up of a tenth of
// the run exceeds the first half's by more than 10% and by more than 8 MiB
// of RSS, 4 MiB of live heap or 5 goroutines), or undecided (under a
// minute, or fewer than 8 samples after the warm-up). It deletes its
// groups at the end. The recorded run (docs/reliability/soak-rabbitmq.json)
// was made with
//
//	switchyard --url amqp://guest:guest@127.0.0.1:5672/ soak --rate 500 --publishers 4 \
//	    --duration 10m --churn 20s --report 15s --json --out docs/reliability/soak-rabbitmq.json
//
// and a shorter one on NATS (docs/reliability/soak-nats.json, its command
// in the record) with --duration 3m --churn 10s --report 10s. On NATS the
// topic's stream stays after the soak (the library cannot delete topics);
// "nats stream rm" removes it. Each record's samples show the progress.
//
// "switchyard <command> --help" documents each command.
package main
