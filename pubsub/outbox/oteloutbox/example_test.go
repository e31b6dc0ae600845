package oteloutbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	_ "modernc.org/sqlite"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/pubsub/outbox/oteloutbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// Give the outbox an Observer that records its relays' work as
// OpenTelemetry metrics (here with an SDK reader; applications install a
// MeterProvider globally instead).
func ExampleObserver() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "oteloutbox-example")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	reader := sdkmetric.NewManualReader()
	broker, _ := memory.New(memory.Config{}, pubsub.WithLogger(nil))
	defer broker.Close()
	cfg := outbox.Config{Publisher: broker, Observer: oteloutbox.Observer(
		oteloutbox.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))}
	if err := outbox.Migrate(ctx, db, cfg); err != nil {
		log.Fatal(err)
	}
	ob, err := outbox.New(db, cfg)
	if err != nil {
		log.Fatal(err)
	}
	got := make(chan string, 1)
	_, _ = broker.Subscribe(ctx, "orders", "billing", func(_ context.Context, m *pubsub.Message) error { got <- m.ID; return nil })

	tx, _ := db.BeginTx(ctx, nil)
	_ = ob.Publish(ctx, tx, "orders", &pubsub.Message{ID: "order-1"})
	_ = tx.Commit()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ob.Run(rctx) }()
	fmt.Println("delivered", <-got)
	stop()
	<-done

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == oteloutbox.MetricPublished {
				fmt.Println(m.Name, sum.DataPoints[0].Value)
			}
		}
	}
	// Output:
	// delivered order-1
	// switchyard.outbox.published 1
}
