// Package analytics is a consumer of the user-activity fan-out: in its own
// consumer group ("analytics") it counts user.activity events per type and
// per user, once per message ID, and serves the counts.
//
//	GET /api/stats[?user_id=U]  {"instance","group","events","by_type","by_user"}
//	GET /api/deadletters         the events this group gave up on
//	GET /healthz                 liveness: 200 "ok"
//	GET /readyz                  readiness: 200 when the broker answers its Ping, else 503
//	GET /metrics                 when Deps.Metrics is set
//
// The counts live in the process: run two analytics processes on a shared
// broker (amqp://) and they compete for the group's events, each counting
// its share, which GET /api/stats of each shows. Run it with Run; the binary
// is examples/cmd/analytics.
package analytics
