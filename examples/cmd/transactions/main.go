// Command transactions runs the transactions service (package
// transactions): CSV exports, synchronous and asynchronous, over SQLite or
// PostgreSQL, seeded with sample transactions when empty.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/transactions -addr :8095 -seed 100000
//	DATABASE_URL=postgres://postgres@localhost:5432/test go run ./examples/cmd/transactions
//
// It serves gRPC on -grpc-addr (:9095), asks the auth service at
// -auth-addr (localhost:8090) before every export, and serves the browser
// console at /console/.
package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

func main() {
	var c cmdutil.Common
	c.Register(":8095")
	dbURL := flag.String("db", cmdutil.Env("DATABASE_URL", cmdutil.DefaultDatabaseURL()), "postgres://... or a SQLite file, sqlite:PATH (env DATABASE_URL)")
	storeURL := flag.String("storage", cmdutil.Env("STORAGE_URL", cmdutil.DefaultStorageURL()), "where the exporters put the files: file:///DIR (env STORAGE_URL)")
	seed := flag.Int("seed", 10_000, "sample transactions to insert when the table is empty (1000000 for a load test)")
	publicURL := flag.String("public-url", cmdutil.Env("PUBLIC_URL", ""), "base of download URLs, such as http://localhost:8095 (env PUBLIC_URL; default: the request's host)")
	sweep := flag.Duration("sweep", transactions.DefaultSweepInterval, "how often the outbox sweeper republishes pending requests")
	var g grpcFlags
	g.register()
	c.Main(func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error {
		store, err := txstore.Open(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer store.Close()
		started := time.Now()
		n, err := store.Seed(ctx, *seed, func(done int) {
			if done%100_000 == 0 {
				log.Info("seeding", "rows", done, "of", *seed)
			}
		})
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("seeded sample transactions", "rows", n, "took", time.Since(started).Round(time.Millisecond))
		}
		files, err := storage.Open(*storeURL)
		if err != nil {
			return err
		}
		deps := transactions.Deps{Store: store, Storage: files, Publisher: b, Namespace: c.NS(),
			PublicURL: *publicURL, SweepInterval: *sweep, Addr: c.Addr, Metrics: c.Metrics(), Logger: log}
		closeGRPC, err := g.apply(ctx, &deps, b, c.NS(), log)
		if err != nil {
			return err
		}
		defer closeGRPC()
		return transactions.Run(ctx, deps)
	})
}
