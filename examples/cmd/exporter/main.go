// Command exporter runs an exporter worker (package exporter), a competing
// consumer of export.requested. Run several; they share the jobs.
//
//	PUBSUB_URL=amqp://guest:guest@localhost:5672/ go run ./examples/cmd/exporter -addr :8096
package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

func main() {
	c := cmdutil.Common{Service: "exporter"}
	c.Register(":8096")
	dbURL := flag.String("db", cmdutil.Env("DATABASE_URL", cmdutil.DefaultDatabaseURL()), "postgres://... or a SQLite file, sqlite:PATH (env DATABASE_URL)")
	storeURL := flag.String("storage", cmdutil.Env("STORAGE_URL", cmdutil.DefaultStorageURL()), "where to put the files: file:///DIR, s3://BUCKET?region=R, gs://BUCKET (env STORAGE_URL)")
	worker := flag.String("worker", cmdutil.Env("WORKER", ""), "name of this worker, the same across restarts (env WORKER; default host:pid)")
	concurrency := flag.Int("concurrency", exporter.DefaultConcurrency, "exports run at once")
	lease := flag.Duration("lease", exporter.DefaultLease, "how long a claim on an export lasts after the worker's last heartbeat (every lease/3)")
	c.Main(func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error {
		store, err := txstore.Open(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer store.Close()
		files, err := storage.Open(*storeURL)
		if err != nil {
			return err
		}
		defer files.Close()
		return exporter.Run(ctx, exporter.Deps{Broker: b, Store: store, Storage: files, Namespace: c.NS(),
			Worker: *worker, Concurrency: *concurrency, Lease: *lease, Addr: c.Addr, Metrics: c.Metrics(), Logger: log})
	})
}
