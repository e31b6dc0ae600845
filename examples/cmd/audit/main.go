// Command audit runs the audit service (package audit), consumer group
// "audit" of user.activity.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/audit -addr :8092
package main

import (
	"context"

	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
)

func main() {
	var c cmdutil.Common
	c.Register(":8092")
	cmdutil.Main(func(ctx context.Context) error {
		log := c.Logger()
		b, err := c.OpenBroker(ctx, log)
		if err != nil {
			return err
		}
		defer b.Close()
		return audit.Run(ctx, audit.Deps{Subscriber: b, Namespace: c.NS(), Addr: c.Addr, Metrics: c.Metrics(), Logger: log})
	})
}
