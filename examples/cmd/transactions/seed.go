package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchyard-go/switchyard/examples/txstore"
)

// seedStore seeds n sample transactions into an empty table, or replaces
// the table's rows with reseed, logging progress every 100,000 rows; when
// the table has rows and reseed is false it says so and seeds nothing.
func seedStore(ctx context.Context, store *txstore.Store, n int, reseed bool, log *slog.Logger) error {
	started := time.Now()
	progress := func(done int) {
		if done%100_000 == 0 && done < n {
			log.Info("seeding sample transactions", "done", done, "total", n)
		}
	}
	seed := store.Seed
	if reseed {
		seed = store.Reseed
	}
	inserted, err := seed(ctx, n, progress)
	if err != nil {
		return err
	}
	if inserted > 0 {
		log.Info("seeded sample transactions", "rows", inserted, "took", time.Since(started).Round(time.Millisecond))
		return nil
	}
	have, err := store.CountTransactions(ctx)
	if err != nil {
		return err
	}
	log.Info("the table already holds transactions; not seeded (-reseed replaces them)", "rows", have, "seed", n)
	return nil
}
