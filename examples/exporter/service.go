package exporter

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
)

// Defaults of Deps.
const (
	DefaultConcurrency   = 2
	DefaultProgressEvery = 1000
	// DefaultLease is how long a worker's claim on an export lasts after its
	// last heartbeat; heartbeats come every third of it.
	DefaultLease = 15 * time.Second
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
	// Give each worker a name of its own that stays the same across
	// restarts: a restarted worker takes back at once the exports its
	// previous process held.
	Worker string
	// Lease is how long the worker's claim on an export lasts after its
	// last heartbeat (default DefaultLease); heartbeats come every Lease/3.
	// Once it expired, the transactions service hands the export to another
	// worker.
	Lease time.Duration
	// Outbox is the outbox.Config of the worker's relay, which publishes
	// export.completed, export.failed and the requests a restart hands back
	// (Publisher and Logger are set by Run).
	Outbox outbox.Config
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
	if d.Lease <= 0 {
		d.Lease = DefaultLease
	}
	d.Logger = service.Logger(d.Logger, "service", "exporter", "worker", d.Worker)
	return errors.Join(errs...)
}

// Run creates the outbox tables and the notifier's groups, takes back the
// exports a previous process of this worker held (see Deps.Worker), joins
// the exporter group, runs the outbox relay, and serves the probes, the
// dead letters (and Metrics) until ctx ends; it then stops taking exports
// and waits for those running. It returns nil after a clean
// shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	ns := deps.Namespace
	cfg := deps.Outbox
	cfg.Publisher, cfg.Logger = deps.Broker, deps.Logger
	// Announcements stored in the outbox carry the handler's trace, which
	// the relay's publish continues.
	cfg.StoreMiddleware = append(slices.Clip(cfg.StoreMiddleware), otelpubsub.PublishMiddleware(otelpubsub.WithLogger(deps.Logger)))
	if err := outbox.Migrate(ctx, deps.Store.DB(), cfg); err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	ob, err := outbox.New(deps.Store.DB(), cfg)
	if err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	w := &worker{Deps: deps, token: deps.Worker + "/" + rand.Text()[:10], outbox: ob,
		requested: ns.ExportRequested(), completed: ns.ExportCompleted(), failed: ns.ExportFailed()}
	if err := service.CreateGroups(ctx, deps.Broker, deps.Groups, w.completed.Name(), w.failed.Name()); err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	if err := w.takeBack(ctx); err != nil {
		return fmt.Errorf("exporter: %w", err)
	}
	requested := w.requested
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
	srv := service.Server{Name: "exporter", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger, Background: func(ctx context.Context) {
		if err := ob.Run(ctx); err != nil {
			deps.Logger.Error("outbox relay stopped", "err", err)
		}
	}}
	return srv.Serve(ctx, mux, "exporter running", "topic", requested.Name(), "group", deps.Group, "concurrency", deps.Concurrency)
}

// ObjectKey returns the storage key of export rid's file.
func ObjectKey(rid string) string { return "exports/" + rid + ".csv" }

// finishTimeout bounds the database update that hands a request back when
// the worker stops.
const finishTimeout = 5 * time.Second
