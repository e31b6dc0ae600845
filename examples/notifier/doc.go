// Package notifier is the event-driven notification example: in its own
// consumer group ("notifier") it reacts to events by calling webhooks.
//
//   - user.activity of type signed_up: POST a welcome notification to the
//     configured webhook URL (a consumer of the user-activity fan-out);
//   - export.completed and export.failed: POST the export's status to the
//     CallbackUrl given with the export request.
//
// A webhook that fails (network error, 5xx, 408, 429) makes the handler fail,
// so the library redelivers the event after a backoff; after the last attempt,
// or at once for another 4xx, the event goes to the group's dead letters.
// Receivers get an Idempotency-Key header (the event's message ID) to
// deduplicate the retries that at-least-once delivery makes, and, with the
// default client, a traceparent header that continues the event's trace.
//
//	GET /api/notifications  the notifications delivered, oldest first
//	GET /api/deadletters    the events this group gave up on
//	GET /healthz            liveness: 200 "ok"
//	GET /readyz             readiness: 200 when the broker answers its Ping, else 503
//	GET /metrics            when Deps.Metrics is set
//
// Run it with Run; the binary is examples/cmd/notifier.
package notifier
