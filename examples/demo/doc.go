// Package demo runs every example service in one process: the activity
// API, audit, analytics and notifier (pub/sub fan-out), the transactions
// API, two exporter workers (competing consumers) and a webhook receiver,
// on one broker (mem:// by default) and a SQLite database in a temporary
// directory. With Config.Scenario it also drives a scripted flow and checks
// that every expected event arrived. The binary is examples/cmd/demo.
package demo
