// Command analytics runs the analytics service (package analytics),
// consumer group "analytics" of user.activity. Run two on one broker (with
// different -addr) and they split the group's events.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/analytics -addr :8093
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/switchyard-go/switchyard/examples/analytics"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/pubsub"
)

func main() {
	c := cmdutil.Common{Service: "analytics"}
	c.Register(":8093")
	instance := flag.String("instance", cmdutil.Env("INSTANCE", ""), "name of this instance in /api/stats (env INSTANCE; default host:pid)")
	c.Main(func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error {
		return analytics.Run(ctx, analytics.Deps{Subscriber: b, Namespace: c.NS(), Instance: *instance, Addr: c.Addr, Metrics: c.Metrics(), Logger: log})
	})
}
