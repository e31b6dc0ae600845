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
	"github.com/switchyard-go/switchyard/examples/internal/service"
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
	d.Logger = service.Logger(d.Logger, "service", "transactions")
	return errors.Join(errs...)
}

// Run creates the exporter group, starts the outbox sweeper and serves the
// API until ctx ends. It returns nil after a clean shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	s := &api{Deps: deps, topic: deps.Namespace.ExportRequested()}
	if err := service.CreateGroups(ctx, deps.Publisher, deps.Groups, s.topic.Name()); err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	srv := service.Server{Name: "transactions", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger, Background: s.sweepLoop}
	return srv.Serve(ctx, s.routes(), "transactions API listening", "database", deps.Store.Dialect(), "topic", s.topic.Name())
}

// api is the running service.
type api struct {
	Deps
	topic pubsub.Topic[events.ExportRequested]
}

func (s *api) routes() http.Handler {
	mux := service.Mux(s.Metrics, health.Broker(s.Publisher), health.Database(s.Store.DB()))
	mux.HandleFunc("GET /api/Export", s.exportSync)
	mux.HandleFunc("POST /api/Export", s.requestExport)
	mux.HandleFunc("GET /api/Export/Status", s.status)
	mux.HandleFunc("GET /api/Export/Download", s.download)
	return mux
}

// baseURL is PublicURL, or the scheme and host r was sent to.
func (s *api) baseURL(r *http.Request) string {
	if s.PublicURL != "" {
		return s.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
