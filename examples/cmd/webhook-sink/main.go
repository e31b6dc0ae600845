// Command webhook-sink runs a webhook receiver (package webhooksink) to
// point the notifier at.
//
//	go run ./examples/cmd/webhook-sink -addr :8099
package main

import (
	"context"

	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/webhooksink"
)

func main() {
	c := cmdutil.Common{Service: "webhook-sink"}
	c.Register(":8099")
	cmdutil.Main(func(ctx context.Context) error {
		return webhooksink.Run(ctx, webhooksink.Deps{Addr: c.Addr, Logger: c.Logger()})
	})
}
