// Package demo runs every example service in one process: the activity
// API, audit, analytics and notifier (pub/sub fan-out), the transactions
// API, two exporter workers (competing consumers) and a webhook receiver,
// on one broker (mem:// by default) and a SQLite database in a temporary
// directory. Every service's broker is instrumented with otelpubsub, and
// their metrics are served together at GET /metrics (Prometheus text format)
// on a listener of the demo's own. With Config.Scenario it also drives a
// scripted flow and checks that every expected event arrived. Start gives
// the running services to a program that wants to drive them itself. The
// binary is examples/cmd/demo.
package demo
