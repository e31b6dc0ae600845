// Command demo runs every example service in one process on mem:// (or
// PUBSUB_URL), with a SQLite database in a temporary directory, and prints
// where each HTTP API listens, and where GET /metrics serves every service's
// broker metrics for Prometheus; the services' logs show the events flowing.
//
//	go run ./examples/cmd/demo              # serve until Ctrl-C
//	go run ./examples/cmd/demo -scenario    # scripted run: exit 0 when every expected event arrived
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchyard-go/switchyard/examples/demo"
	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
)

func main() {
	var cfg demo.Config
	scenario := flag.Bool("scenario", false, "run the scripted flow and exit: 0 when every expected event arrived, 1 otherwise")
	flag.StringVar(&cfg.PubSubURL, "pubsub-url", cmdutil.Env("PUBSUB_URL", demo.DefaultPubSubURL), "broker URL (env PUBSUB_URL)")
	ns := flag.String("namespace", cmdutil.Env("PUBSUB_NAMESPACE", ""), "prefix of every topic name (env PUBSUB_NAMESPACE)")
	flag.StringVar(&cfg.Host, "host", demo.DefaultHost, "address the HTTP APIs listen on")
	port := flag.Int("port", demo.DefaultBasePort, "first port: activity on it, then audit, analytics, notifier, transactions, exporter-1, exporter-2; metrics on port+7, webhook sink on port+8 (-1: free ports; -scenario defaults to free ports)")
	flag.StringVar(&cfg.DatabaseURL, "db", os.Getenv("DATABASE_URL"), "database (env DATABASE_URL; default: SQLite in a temporary directory)")
	flag.IntVar(&cfg.Seed, "seed", demo.DefaultSeed, "sample transactions in an empty database")
	flag.DurationVar(&cfg.Timeout, "timeout", demo.DefaultTimeout, "how long -scenario waits for the expected events")
	level := flag.String("log-level", cmdutil.Env("LOG_LEVEL", ""), "debug, info, warn or error (default info; warn with -scenario)")
	flag.Parse()

	cfg.Scenario = *scenario
	cfg.Namespace = events.Namespace(*ns)
	cfg.BasePort = *port
	portSet := false
	flag.Visit(func(f *flag.Flag) { portSet = portSet || f.Name == "port" })
	if cfg.Scenario && !portSet {
		cfg.BasePort = -1
	}
	var lv slog.Level
	if *level == "" && cfg.Scenario {
		lv = slog.LevelWarn
	} else if err := lv.UnmarshalText([]byte(*level)); *level != "" && err != nil {
		fmt.Fprintln(os.Stderr, "error: -log-level:", err)
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	if err := demo.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		stop()
		os.Exit(1)
	}
	if cfg.Scenario {
		fmt.Printf("ok (%.1fs)\n", time.Since(started).Seconds())
	}
}
