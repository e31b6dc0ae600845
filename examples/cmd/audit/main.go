// Command audit runs the audit service (package audit), consumer group
// "audit" of user.activity.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/audit -addr :8092
package main

import (
	"context"
	"log/slog"

	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/pubsub"
)

func main() {
	c := cmdutil.Common{Service: "audit"}
	c.Register(":8092")
	c.Main(func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error {
		return audit.Run(ctx, audit.Deps{Subscriber: b, Namespace: c.NS(), Addr: c.Addr, Metrics: c.Metrics(), Logger: log})
	})
}
