// Package exporter is the worker of the asynchronous transaction export: a
// consumer group ("exporter") of competing consumers. Run several, in one
// process or many; each export.requested event is handled by one of them.
//
// A worker claims the request in the database (pending → running, so that a
// duplicate or concurrent delivery does not run it twice), streams the CSV of
// the range from the database into storage, records its progress (rows
// written) as it goes, publishing it on export.progress (best effort, for
// the clients watching the export), marks the request completed and
// publishes export.completed; a request that cannot succeed is marked failed and
// export.failed is published. A transient failure hands the request back and
// returns an error, so the library redelivers it after a backoff, to this
// worker or another; after the last attempt the export is marked failed.
//
//	GET /api/deadletters  the events this group gave up on
//	GET /healthz          liveness: 200 "ok"
//	GET /readyz           readiness: 200 when the broker and the database answer a ping, else 503
//	GET /metrics          when Deps.Metrics is set
//
// Run it with Run; the binary is examples/cmd/exporter.
package exporter
