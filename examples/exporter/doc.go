// Package exporter is the worker of the asynchronous transaction export: a
// consumer group ("exporter") of competing consumers. Run several, in one
// process or many; each export.requested event is handled by one of them.
//
// A worker claims the request in the database under a lease (pending →
// running, so that a duplicate or concurrent delivery does not run it
// twice), renews the lease with heartbeats while it streams the CSV of the
// range from the database into storage, records its progress (rows
// written) as it goes, publishing it on export.progress (best effort, for
// the clients watching the export), and marks the request completed,
// storing export.completed in the outbox in the same transaction; a request
// that cannot succeed is marked failed with export.failed. A transient
// failure hands the request back and returns an error, so the library
// redelivers it after a backoff, to this worker or another; after the last
// attempt the export is marked failed. A worker killed mid-export leaves its
// claim: restarted under the same name (Deps.Worker) it takes its exports
// back at once; otherwise, once the lease expired, the transactions service
// hands them to another worker. Partial files of a killed attempt are
// removed when the export is claimed again.
//
//	GET /api/deadletters  the events this group gave up on
//	GET /healthz          liveness: 200 "ok"
//	GET /readyz           readiness: 200 when the broker and the database answer a ping, else 503
//	GET /metrics          when Deps.Metrics is set
//
// Run it with Run; the binary is examples/cmd/exporter.
package exporter
