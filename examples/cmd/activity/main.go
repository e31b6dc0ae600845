// Command activity runs the activity service (package activity): POST
// /api/activity publishes user.activity events.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/activity -addr :8091
package main

import (
	"context"

	"github.com/switchyard-go/switchyard/examples/activity"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
)

func main() {
	var c cmdutil.Common
	c.Register(":8091")
	cmdutil.Main(func(ctx context.Context) error {
		log := c.Logger()
		b, err := c.OpenBroker(ctx, log)
		if err != nil {
			return err
		}
		defer b.Close()
		return activity.Run(ctx, activity.Deps{Publisher: b, Namespace: c.NS(), Addr: c.Addr, Metrics: c.Metrics(), Logger: log})
	})
}
