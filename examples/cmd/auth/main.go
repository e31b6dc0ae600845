// Command auth runs the auth service (package auth): gRPC
// Check(user, action, resource) over a policy file, with the standard health
// service and reflection.
//
//	go run ./examples/cmd/auth                           # 127.0.0.1:8090, the demo policy
//	go run ./examples/cmd/auth -addr :8090 -policy my-policy.txt
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"github.com/switchyard-go/switchyard/examples/auth"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
)

func main() {
	addr := flag.String("addr", cmdutil.Env("ADDR", auth.DefaultAddr), "gRPC listen address (env ADDR)")
	policy := flag.String("policy", cmdutil.Env("AUTH_POLICY", ""), "policy file, one rule a line: user action resource (env AUTH_POLICY; default the demo policy)")
	level := flag.String("log-level", cmdutil.Env("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	cmdutil.Main(func(ctx context.Context) error {
		var lv slog.Level
		_ = lv.UnmarshalText([]byte(*level))
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
		p := auth.DemoPolicy()
		if *policy != "" {
			var err error
			if p, err = auth.LoadPolicy(*policy); err != nil {
				return err
			}
		} else {
			log.Info("no -policy: using the demo policy (ada and carol may export, bob may not)")
		}
		return auth.Run(ctx, auth.Deps{Policy: p, Addr: *addr, Logger: log})
	})
}
