package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/examples/console"
	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/internal/grpcx"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
	"github.com/switchyard-go/switchyard/examples/transactions"
)

// defaultLinks are the other services as the README starts them.
const defaultLinks = "activity=http://localhost:8091,audit=http://localhost:8092,analytics=http://localhost:8093,notifier=http://localhost:8094,exporter=http://localhost:8096"

// grpcFlags are the flags of the gRPC API, the auth check and the console.
type grpcFlags struct {
	grpcAddr, authAddr, links string
	console                   bool
}

func (g *grpcFlags) register() {
	flag.StringVar(&g.grpcAddr, "grpc-addr", cmdutil.Env("GRPC_ADDR", "127.0.0.1:9095"), "gRPC listen address (loopback by default; \":9095\" for every interface); empty: no gRPC API (env GRPC_ADDR)")
	flag.StringVar(&g.authAddr, "auth-addr", cmdutil.Env("AUTH_ADDR", "localhost:8090"), "the auth service, asked before every export (fail closed); empty: no check (env AUTH_ADDR)")
	flag.BoolVar(&g.console, "console", true, "serve the browser console at /console/")
	flag.StringVar(&g.links, "console-links", cmdutil.Env("CONSOLE_LINKS", defaultLinks), "the services the console reaches: activity=URL and GROUP=URL of each group's dead-letter API, comma-separated (env CONSOLE_LINKS)")
}

// consoleBrokerWait is how long apply waits for the broker before serving
// the console without live events.
const consoleBrokerWait = 3 * time.Second

// apply sets the gRPC, auth and console fields of deps; the returned func
// releases what it opened.
func (g *grpcFlags) apply(ctx context.Context, deps *transactions.Deps, b *cmdutil.LazyBroker, ns events.Namespace, log *slog.Logger) (func(), error) {
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				log.Warn("close", "err", err)
			}
		}
	}
	deps.GRPCAddr = g.grpcAddr
	if g.authAddr != "" {
		cc, err := grpcx.Dial(g.authAddr, nil)
		if err != nil {
			return nil, err
		}
		closers = append(closers, cc.Close)
		deps.Auth = authpb.NewAuthServiceClient(cc)
	} else {
		log.Warn("no -auth-addr: exports are not checked; anyone may export")
	}
	if g.console {
		d := console.Deps{Namespace: ns, DeadLetterAPIs: map[string]string{}, Logger: log}
		// The console's live events need the broker's subscription now: wait
		// a little for the connection, else serve the page without them.
		select {
		case <-b.Ready():
			d.Subscriber = b
		case <-time.After(consoleBrokerWait):
			log.Warn("console: the broker is not connected yet; the page runs without live events", "waited", consoleBrokerWait)
		}
		for _, kv := range strings.Split(g.links, ",") {
			name, u, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || u == "" {
				if kv != "" {
					closeAll()
					return nil, fmt.Errorf("-console-links: %q is not NAME=URL", kv)
				}
				continue
			}
			if name == "activity" {
				d.ActivityURL = strings.TrimRight(u, "/")
			} else {
				d.DeadLetterAPIs[name] = strings.TrimRight(u, "/")
			}
		}
		c, err := console.New(ctx, d)
		if err != nil {
			closeAll()
			return nil, errors.Join(err)
		}
		closers = append(closers, c.Close)
		deps.Console = c
	}
	return closeAll, nil
}
