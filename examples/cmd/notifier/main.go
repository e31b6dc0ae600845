// Command notifier runs the notifier (package notifier), consumer group
// "notifier" of user.activity, export.completed and export.failed.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/notifier -addr :8094 \
//	    -welcome-webhook http://localhost:8099/hooks/welcome
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/internal/webhook"
	"github.com/switchyard-go/switchyard/examples/notifier"
	"github.com/switchyard-go/switchyard/pubsub"
)

func main() {
	c := cmdutil.Common{Service: "notifier"}
	c.Register(":8094")
	allow := flag.String("callback-allow", cmdutil.Env("CALLBACK_ALLOW", webhook.DefaultAllow), "where export callbacks may go: host names, *.domain, *, IP addresses and CIDR networks, comma-separated (env CALLBACK_ALLOW; default loopback only)")
	welcome := flag.String("welcome-webhook", cmdutil.Env("WELCOME_WEBHOOK_URL", ""), "URL that receives a welcome notification per signed_up event (env WELCOME_WEBHOOK_URL; empty: log only)")
	c.Main(func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error {
		policy, err := webhook.ParsePolicy(*allow)
		if err != nil {
			return err
		}
		return notifier.Run(ctx, notifier.Deps{Subscriber: b, Namespace: c.NS(), WelcomeWebhookURL: *welcome, CallbackPolicy: &policy,
			Addr: c.Addr, Metrics: c.Metrics(), Logger: log})
	})
}
