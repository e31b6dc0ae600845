package transactions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Defaults of Deps.
const (
	DefaultSweepInterval  = 5 * time.Second
	DefaultStaleAfter     = 2 * time.Minute
	DefaultPublishTimeout = 5 * time.Second
)

// DefaultGroups are the consumer groups created on export.requested at start
// when Deps.Groups is nil.
var DefaultGroups = []string{events.GroupExporter}

// Deps is what the transactions service runs on.
type Deps struct {
	// Store is the database. Required.
	Store *txstore.Store
	// Storage holds the finished exports, for download. Required.
	Storage storage.Storage
	// Publisher publishes export.requested. Required.
	Publisher pubsub.Publisher
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Groups are created on export.requested at start, when Publisher is a
	// pubsub.GroupCreator, so that requests published before an exporter
	// first runs are kept for it. Default DefaultGroups; empty (not nil)
	// creates none.
	Groups []string
	// PublicURL is the base of the download URLs the API hands out, such as
	// "http://localhost:8095". Default: taken from each request's Host.
	PublicURL string
	// SweepInterval is how often the outbox sweeper looks for requests to
	// (re)publish (default DefaultSweepInterval). A request is swept when
	// its event was not published within one interval of its creation.
	SweepInterval time.Duration
	// StaleAfter is how long a pending or running request may go without
	// progress before the sweeper publishes it again (default
	// DefaultStaleAfter).
	StaleAfter time.Duration
	// PublishTimeout bounds each publish, so that a request is answered
	// quickly while the broker is down (default DefaultPublishTimeout).
	PublishTimeout time.Duration
	// Listener is where the API serves; if nil, Run listens on Addr.
	Listener net.Listener
	// Addr is the listen address when Listener is nil (default ":http").
	Addr string
	// MaxBodyBytes limits request bodies (default httpx.DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Metrics, when not nil, is served at GET /metrics (the binaries serve
	// their broker's metrics there in the Prometheus format).
	Metrics http.Handler
	// Logger logs the service's events (default slog.Default()).
	Logger *slog.Logger
}

func (d *Deps) setDefaults() error {
	var errs []error
	if d.Store == nil {
		errs = append(errs, errors.New("transactions: Deps.Store is required"))
	}
	if d.Storage == nil {
		errs = append(errs, errors.New("transactions: Deps.Storage is required"))
	}
	if d.Publisher == nil {
		errs = append(errs, errors.New("transactions: Deps.Publisher is required"))
	}
	if d.Groups == nil {
		d.Groups = DefaultGroups
	}
	if d.SweepInterval <= 0 {
		d.SweepInterval = DefaultSweepInterval
	}
	if d.StaleAfter <= 0 {
		d.StaleAfter = DefaultStaleAfter
	}
	if d.PublishTimeout <= 0 {
		d.PublishTimeout = DefaultPublishTimeout
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.Logger = d.Logger.With("service", "transactions")
	return errors.Join(errs...)
}

// Run creates the exporter group, starts the outbox sweeper and serves the
// API until ctx ends. It returns nil after a clean shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	s := &service{Deps: deps, topic: deps.Namespace.ExportRequested()}
	if gc, ok := deps.Publisher.(pubsub.GroupCreator); ok {
		for _, g := range deps.Groups {
			if err := gc.CreateGroup(ctx, s.topic.Name(), g); err != nil {
				return fmt.Errorf("transactions: create group %s on %s: %w", g, s.topic.Name(), err)
			}
		}
	}
	ln, err := httpx.Listen(deps.Listener, deps.Addr)
	if err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	swept := make(chan struct{})
	go func() { defer close(swept); s.sweepLoop(ctx) }()
	defer func() { <-swept }()
	deps.Logger.Info("transactions API listening", "addr", ln.Addr().String(), "database", deps.Store.Dialect(), "topic", s.topic.Name())
	return httpx.Serve(ctx, ln, s.routes(), deps.Logger)
}

// service is the running API.
type service struct {
	Deps
	topic pubsub.Topic[events.ExportRequested]
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	health.Register(mux, health.Broker(s.Publisher), health.Database(s.Store.DB()))
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("GET /api/Export", s.exportSync)
	mux.HandleFunc("POST /api/Export", s.requestExport)
	mux.HandleFunc("GET /api/Export/Status", s.status)
	mux.HandleFunc("GET /api/Export/Download", s.download)
	return mux
}

// baseURL is PublicURL, or the scheme and host r was sent to.
func (s *service) baseURL(r *http.Request) string {
	if s.PublicURL != "" {
		return s.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
