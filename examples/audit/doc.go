// Package audit is a consumer of the user-activity fan-out: in its own
// consumer group ("audit") it receives every user.activity event and appends
// it to its store, once per message ID however often the broker redelivers
// it, and serves the trail over HTTP.
//
//	GET /api/audit?user_id=U[&limit=N]  the events of user U, oldest first
//	GET /api/audit[?limit=N]            the latest events of every user
//	GET /api/deadletters                 the events this group gave up on
//	GET /healthz                         liveness: 200 "ok"
//	GET /readyz                          readiness: 200 when the broker answers its Ping, else 503
//	GET /metrics                         when Deps.Metrics is set
//
// Run it with Run; the binary is examples/cmd/audit.
package audit
