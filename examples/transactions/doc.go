// Package transactions is the transaction-export example: an HTTP API over a
// database of transactions that exports a date range as CSV in the two styles
// microservices use for such work.
//
// Synchronous HTTP: the answer is the file, streamed from the database
// cursor as it is read.
//
//	GET  /api/Export?StartDate=YYYY-MM-DD&EndDate=YYYY-MM-DD  → 200 text/csv
//
// Asynchronous HTTP: the request is stored and acknowledged with an
// unguessable id; an exporter worker builds the file in the background; the
// client polls the status (or gets a webhook on CallbackUrl, from the
// notifier) and downloads the file from a signed URL of the bucket, or
// through this service when the storage cannot sign.
//
//	POST /api/Export {"StartDate","EndDate","CallbackUrl"?} → 202 {"RID"}
//	GET  /api/Export/Status?RID=...   → {"RID","Status","Progress","Url"?,"Error"?}
//	GET  /api/Export/Download?RID=... → 200 text/csv once completed
//	GET  /healthz  liveness: 200 "ok"
//	GET  /readyz   readiness: 200 when the broker and the database answer a ping, else 503
//	GET  /metrics  when Deps.Metrics is set
//
// The request row and its export.requested event are stored in one
// database transaction (the transactional outbox of pubsub/outbox), and the
// outbox relay publishes the event after commit: the API answers at once,
// also while the broker is unreachable (the service even starts without it:
// readiness then says not ready), and no request is lost or published
// without its row. A sweeper hands the exports whose exporter stopped
// renewing its lease to another exporter, in the same way. A client may
// send Idempotency-Key to make its retries safe. Malformed dates or
// StartDate after EndDate are answered 400, as are a malformed RID and a
// CallbackUrl outside the allow-list (Deps.CallbackPolicy); an unknown RID
// 404. Every error is an RFC 9457 problem document.
//
// With Deps.Auth set, every export (HTTP and gRPC, synchronous and
// asynchronous) is first checked with the auth service, synchronously and
// with a deadline: 401 without an X-User header, 403 when denied, 503 when
// the auth service does not answer (fail closed). GET
// /api/Export/Events?RID=... streams the export's status as Server-Sent
// Events, pushed as the exporters report progress through the broker
// (export.progress, export.completed, export.failed, received in a consumer
// group of this instance's own). With Deps.GRPCListener or GRPCAddr the
// same API is served over gRPC (exportpb.ExportService: Export,
// StartExport, GetExportStatus, WatchExport, Download; see grpc.go), and
// with Deps.Console the browser console under /console/.
//
// Run it with Run; the binary is examples/cmd/transactions.
package transactions
