// Command audit runs the audit service (package audit), consumer group
// "audit" of user.activity.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/audit -addr :8092
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

func main() {
	c := cmdutil.Common{Service: "audit"}
	c.Register(":8092")
	dbURL := flag.String("db", cmdutil.Env("AUDIT_DATABASE_URL", ""), "keep the trail in this database, postgres://... or sqlite:PATH, deduplicated through the inbox (env AUDIT_DATABASE_URL; default: in memory)")
	c.Main(func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error {
		deps := audit.Deps{Subscriber: b, Namespace: c.NS(), Addr: c.Addr, Metrics: c.Metrics(), Logger: log}
		if *dbURL != "" {
			db, err := txstore.OpenDB(*dbURL)
			if err != nil {
				return err
			}
			defer db.Close()
			deps.DB = db
		}
		return audit.Run(ctx, deps)
	})
}
