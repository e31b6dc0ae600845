// Package activity is the producer of the user-activity fan-out example: an
// HTTP API that validates user activity and publishes it as a typed
// user.activity event, keyed by user id.
//
//	POST /api/activity  {"user_id","type","at","attributes"} → 202 {"id": "<message id>"}
//	GET  /healthz       liveness: 200 "ok"
//	GET  /readyz        readiness: 200 when the broker answers its Ping, else 503
//	GET  /metrics       when Deps.Metrics is set (the binary's broker metrics)
//
// Bad input is answered 400 with a message naming every problem, a body over
// the limit 413. The event reaches every consumer group of the topic (audit,
// analytics and notifier): pub/sub fan-out. Run it with Run; the binary is
// examples/cmd/activity.
package activity
