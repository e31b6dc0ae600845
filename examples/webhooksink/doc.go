// Package webhooksink is a webhook receiver for trying the examples: it
// accepts JSON POSTs on any path under /hooks/, logs them, and lists them.
// The notifier's welcome notifications and export callbacks can be pointed at
// it.
//
//	POST /hooks/ANY[?fail=N]  record the call; with fail=N, answer 503 to the
//	                          first N calls of each Idempotency-Key (to watch
//	                          the notifier retry)
//	GET  /api/webhooks        the calls received, oldest first, with their
//	                          traceparent header
//	GET  /healthz             liveness: 200 "ok"
//	GET  /readyz              always 200: the sink depends on nothing
//
// Run it with Run; the binary is examples/cmd/webhook-sink.
package webhooksink
