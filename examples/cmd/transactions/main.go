// Command transactions runs the transactions service (package
// transactions): CSV exports, synchronous and asynchronous, over SQLite or
// PostgreSQL, seeded with sample transactions when empty. It starts, and
// accepts export requests into its outbox, even while the broker is
// unreachable.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ transactions -addr 127.0.0.1:8095 -seed 100000
//	DATABASE_URL=postgres://postgres@localhost:5432/test transactions
//
// It serves gRPC on -grpc-addr (127.0.0.1:9095), asks the auth service at
// -auth-addr (localhost:8090) before every export, and serves the browser
// console at /console/.
package main

import (
	"context"
	"flag"

	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/webhook"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
)

func main() {
	c := cmdutil.Common{Service: "transactions"}
	c.Register(":8095")
	dbURL := flag.String("db", cmdutil.Env("DATABASE_URL", cmdutil.DefaultDatabaseURL()), "postgres://... or a SQLite file, sqlite:PATH (env DATABASE_URL)")
	storeURL := flag.String("storage", cmdutil.Env("STORAGE_URL", cmdutil.DefaultStorageURL()), "where the exporters put the files: file:///DIR, s3://BUCKET?region=R, gs://BUCKET (env STORAGE_URL)")
	seed := flag.Int("seed", 10_000, "sample transactions to insert when the table is empty (1000000 for a load test)")
	reseed := flag.Bool("reseed", false, "replace the transactions with -seed new sample ones, even when the table has rows")
	publicURL := flag.String("public-url", cmdutil.Env("PUBLIC_URL", ""), "base of the download URLs handed out, such as http://localhost:8095 (env PUBLIC_URL; default: relative URLs)")
	allow := flag.String("callback-allow", cmdutil.Env("CALLBACK_ALLOW", webhook.DefaultAllow), "where CallbackUrl may point: host names, *.domain, *, IP addresses and CIDR networks, comma-separated (env CALLBACK_ALLOW; default loopback only)")
	sweep := flag.Duration("sweep", transactions.DefaultSweepInterval, "how often expired leases of exporters are looked for and their exports handed to another")
	var g grpcFlags
	g.register()
	cmdutil.Main(func(ctx context.Context) error {
		log := c.Logger()
		if err := c.Check(); err != nil {
			return err
		}
		policy, err := webhook.ParsePolicy(*allow)
		if err != nil {
			return err
		}
		// Bind first, so that a port in use fails at once, before any
		// seeding.
		ln, err := httpx.Listen(nil, c.Addr)
		if err != nil {
			return err
		}
		defer ln.Close()
		store, err := txstore.Open(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer store.Close()
		if err := seedStore(ctx, store, *seed, *reseed, log); err != nil {
			return err
		}
		files, err := storage.Open(*storeURL)
		if err != nil {
			return err
		}
		defer files.Close()
		b, err := c.OpenBrokerLazy(log)
		if err != nil {
			return err
		}
		defer b.Close()
		deps := transactions.Deps{Store: store, Storage: files, Publisher: b, Namespace: c.NS(),
			PublicURL: *publicURL, CallbackPolicy: &policy, SweepInterval: *sweep, Listener: ln, Metrics: c.Metrics(), Logger: log}
		closeGRPC, err := g.apply(ctx, &deps, b, c.NS(), log)
		if err != nil {
			return err
		}
		defer closeGRPC()
		return transactions.Run(ctx, deps)
	})
}
