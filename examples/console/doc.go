// Package console is the examples' browser console: one page of plain
// HTML and JavaScript (embedded, no build step, nothing from a CDN) for the
// two flows a person would click through.
//
// Export: pick a user and a date range, download the CSV synchronously, or
// request it asynchronously and watch its status change live (Server-Sent
// Events from the transactions service, fed by the exporters' progress and
// completion events through the broker), then download it. A user the auth
// service refuses (bob, in the demo) sees the denial and its reason; with
// the auth service down, the page says that exports are refused.
//
// Live events: post a user activity and watch its fan-out as it happens:
// each event and, for each consumer group (audit, analytics, notifier),
// whether it acked, retried or dead-lettered it. Each group's dead letters
// are listed with a Replay button.
//
// The live view is fed by events.DeliveryReport: the services report what
// their delivery loops did (package internal/reports, a pubsub.Observer),
// and the console receives the reports in a consumer group of its own
// instance ("console.<Instance>", deleted when it closes: every instance
// needs every report) and fans them out in memory to the open pages.
//
// Routes, under /console/:
//
//	GET  /console/                           the page
//	GET  /console/api/config                 users, groups, what is wired
//	GET  /console/api/live                   delivery reports as Server-Sent Events (recent ones first)
//	POST /console/api/activity               forwarded to the activity service's POST /api/activity
//	GET  /console/api/deadletters            every group's GET /api/deadletters
//	POST /console/api/deadletters/replay     {"group","topic","ids"} forwarded to that group's service
//
// With Deps.ExportAPI set (the demo serves the console on a port of its
// own), /api/Export and its sub-paths are forwarded to the transactions
// service too, so that the page's export calls stay on one origin;
// mounted in the transactions service (Deps.Console there), the page calls
// it directly.
package console
