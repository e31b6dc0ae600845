// Command activity runs the activity service (package activity): POST
// /api/activity publishes user.activity events.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/activity -addr :8091
package main

import (
	"context"
	"log/slog"

	"github.com/switchyard-go/switchyard/examples/activity"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/pubsub"
)

func main() {
	c := cmdutil.Common{Service: "activity"}
	c.Register(":8091")
	c.Main(func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error {
		return activity.Run(ctx, activity.Deps{Publisher: b, Namespace: c.NS(), Addr: c.Addr, Metrics: c.Metrics(), Logger: log})
	})
}
