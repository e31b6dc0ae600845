package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Defaults of Deps.
const (
	DefaultConcurrency   = 2
	DefaultProgressEvery = 1000
)

// DefaultGroups are the consumer groups created on export.completed and
// export.failed at start when Deps.Groups is nil.
var DefaultGroups = []string{events.GroupNotifier}

// Deps is what an exporter worker runs on.
type Deps struct {
	// Broker receives export.requested and publishes export.completed and
	// export.failed. Required.
	Broker pubsub.Broker
	// Store is the database. Required.
	Store *txstore.Store
	// Storage receives the CSV files. Required.
	Storage storage.Storage
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Group is the consumer group (default events.GroupExporter).
	Group string
	// Worker names this worker in the database and logs (default host:pid).
	Worker string
	// Groups are created on export.completed and export.failed at start
	// (when Broker is a pubsub.GroupCreator). Default DefaultGroups; empty
	// (not nil) creates none.
	Groups []string
	// Concurrency is how many exports this worker runs at once (default
	// DefaultConcurrency).
	Concurrency int
	// MaxAttempts is how many times an export is tried (the subscription's
	// pubsub.WithMaxAttempts; default pubsub.DefaultMaxAttempts). When the
	// delivery loop dead-letters a request, the export is marked failed.
	MaxAttempts int
	// ProgressEvery is how many rows are written between progress updates
	// (default DefaultProgressEvery).
	ProgressEvery int64
	// SubscribeOptions are passed to Subscribe after the worker's own
	// (concurrency, max attempts, the observer that marks dead-lettered
	// exports failed).
	SubscribeOptions []pubsub.SubscribeOption
	// Listener is where the API serves; if nil, Run listens on Addr.
	Listener net.Listener
	// Addr is the listen address when Listener is nil (default ":http").
	Addr string
	// Metrics, when not nil, is served at GET /metrics (the binaries serve
	// their broker's metrics there in the Prometheus format).
	Metrics http.Handler
	// Logger logs the worker's events (default slog.Default()).
	Logger *slog.Logger
}

func (d *Deps) setDefaults() error {
	var errs []error
	if d.Broker == nil {
		errs = append(errs, errors.New("exporter: Deps.Broker is required"))
	}
	if d.Store == nil {
		errs = append(errs, errors.New("exporter: Deps.Store is required"))
	}
	if d.Storage == nil {
		errs = append(errs, errors.New("exporter: Deps.Storage is required"))
	}
	if d.Group == "" {
		d.Group = events.GroupExporter
	}
	if d.Worker == "" {
		host, _ := os.Hostname()
		d.Worker = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if d.Groups == nil {
		d.Groups = DefaultGroups
	}
	if d.Concurrency <= 0 {
		d.Concurrency = DefaultConcurrency
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = pubsub.DefaultMaxAttempts
	}
	if d.ProgressEvery <= 0 {
		d.ProgressEvery = DefaultProgressEvery
	}
	d.Logger = service.Logger(d.Logger, "service", "exporter", "worker", d.Worker)
	return errors.Join(errs...)
}

// Run creates the notifier's groups, joins the exporter group and serves
// the probes, the dead letters (and Metrics) until ctx ends; it then stops taking
// exports and waits for those running. It returns nil after a clean
// shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	ns := deps.Namespace
	w := &worker{Deps: deps, completed: ns.ExportCompleted(), failed: ns.ExportFailed()}
	if err := service.CreateGroups(ctx, deps.Broker, deps.Groups, w.completed.Name(), w.failed.Name()); err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	requested := ns.ExportRequested()
	opts := append([]pubsub.SubscribeOption{
		pubsub.WithConcurrency(deps.Concurrency),
		pubsub.WithMaxAttempts(deps.MaxAttempts),
		pubsub.WithObserver(pubsub.Observer{OnSettle: w.onSettle}),
	}, deps.SubscribeOptions...)
	c := service.NewConsumer("exporter", deps.Broker, deps.Group, deps.Logger)
	defer c.Close()
	if err := service.Subscribe(ctx, c, requested, w.handle, opts...); err != nil {
		return err
	}

	mux := service.Mux(deps.Metrics, health.Broker(deps.Broker), health.Database(deps.Store.DB()))
	c.DeadLetters().Register(mux)
	srv := service.Server{Name: "exporter", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger}
	return srv.Serve(ctx, mux, "exporter running", "topic", requested.Name(), "group", deps.Group, "concurrency", deps.Concurrency)
}

// ObjectKey returns the storage key of export rid's file.
func ObjectKey(rid string) string { return "exports/" + rid + ".csv" }

// finishTimeout bounds the database update that hands a request back when
// the worker stops.
const finishTimeout = 5 * time.Second
