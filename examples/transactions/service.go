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
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
	"go.opentelemetry.io/otel/trace"
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

	// The gRPC API, the auth check, live export status and the console
	// (grpc.go, authz.go, watch.go).

	// GRPCListener is where the gRPC API (exportpb.ExportService, health,
	// reflection) serves; if nil, Run listens on GRPCAddr, and serves no
	// gRPC when that is empty too (the default).
	GRPCListener net.Listener
	// GRPCAddr is the gRPC listen address when GRPCListener is nil.
	GRPCAddr string
	// Auth, when not nil, is asked (authpb.AuthService.Check) before every
	// export, HTTP and gRPC, synchronous and asynchronous, whether the user
	// may export transactions; the user is named by the X-User header
	// (gRPC: the x-user metadata). No user: 401 / UNAUTHENTICATED; denied:
	// 403 / PERMISSION_DENIED with the reason; no answer within
	// AuthTimeout: 503 / UNAVAILABLE, the export refused (fail closed). Nil:
	// no check, every export allowed.
	Auth authpb.AuthServiceClient
	// AuthTimeout bounds each auth check (default DefaultAuthTimeout).
	AuthTimeout time.Duration
	// Subscriber receives export.progress, export.completed and
	// export.failed in a consumer group of this instance's own, which feeds
	// gRPC WatchExport and GET /api/Export/Events; the group is deleted at
	// shutdown. Default: Publisher, when it is a pubsub.Subscriber and a
	// pubsub.GroupDeleter; without one, those two answer 501 /
	// UNIMPLEMENTED.
	Subscriber pubsub.Subscriber
	// Instance names this instance's consumer group of export status
	// events, "transactions.watch.<Instance>" (default a random name).
	Instance string
	// TracerProvider makes the server spans of gRPC calls (default the
	// global TracerProvider).
	TracerProvider trace.TracerProvider
	// Console, when not nil, is served under /console/ (see package
	// console).
	Console http.Handler
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
	d.setGRPCDefaults()
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
	stop, err := s.startGRPC(ctx)
	if err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	srv := service.Server{Name: "transactions", Listener: s.Listener, Addr: deps.Addr, Logger: deps.Logger, Background: s.sweepLoop}
	err = srv.Serve(ctx, s.routes(), "transactions API listening", "database", deps.Store.Dialect(), "topic", s.topic.Name())
	return errors.Join(err, stop())
}

// api is the running service.
type api struct {
	Deps
	topic pubsub.Topic[events.ExportRequested]
	// watch pushes export status changes (nil without a Subscriber).
	watch *watcher
}

func (s *api) routes() http.Handler {
	mux := service.Mux(s.Metrics, health.Broker(s.Publisher), health.Database(s.Store.DB()))
	mux.Handle("GET /api/Export", s.authorized(s.exportSync))
	mux.Handle("POST /api/Export", s.authorized(s.requestExport))
	s.extraRoutes(mux)
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
