package transactions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/examples/internal/webhook"
	"github.com/switchyard-go/switchyard/examples/proto/authpb"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Deps.
const (
	DefaultSweepInterval = 5 * time.Second
	// DefaultURLTTL is how long a signed download URL stays valid.
	DefaultURLTTL = 15 * time.Minute
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
	// Publisher is what the outbox relay publishes export.requested
	// through; it may be unreachable at start (cmdutil.LazyBroker): requests
	// are accepted into the outbox meanwhile. Required.
	Publisher pubsub.Publisher
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Groups are created on export.requested, when Publisher is a
	// pubsub.GroupCreator, before the relay publishes anything, so that
	// requests published before an exporter first runs are kept for it.
	// Default DefaultGroups; empty (not nil) creates none.
	Groups []string
	// PublicURL is the base of the download URLs the API hands out, such as
	// "http://localhost:8095". Default: none, and the URLs are relative
	// ("/api/Export/Download?RID=..."); a request's Host header is never
	// used.
	PublicURL string
	// CallbackPolicy says which CallbackUrl values are accepted (default
	// webhook.DefaultAllow: loopback only). The notifier enforces the same
	// policy when it calls them.
	CallbackPolicy *webhook.Policy
	// URLTTL is how long the signed URL of a completed export lasts, when
	// Storage can sign URLs (default DefaultURLTTL); otherwise downloads go
	// through the service.
	URLTTL time.Duration
	// SweepInterval is how often the sweeper looks for running exports
	// whose worker's lease expired, to hand them to another worker (default
	// DefaultSweepInterval).
	SweepInterval time.Duration
	// Outbox is the outbox.Config of the relay, which publishes what the
	// API stored (Publisher and Logger are set by Run; zero values are the
	// outbox's defaults).
	Outbox outbox.Config
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
	if d.CallbackPolicy == nil {
		p := webhook.MustParsePolicy(webhook.DefaultAllow)
		d.CallbackPolicy = &p
	}
	if d.URLTTL <= 0 {
		d.URLTTL = DefaultURLTTL
	}
	if d.SweepInterval <= 0 {
		d.SweepInterval = DefaultSweepInterval
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	d.setGRPCDefaults()
	d.Logger = service.Logger(d.Logger, "service", "transactions")
	return errors.Join(errs...)
}

// Run creates the outbox tables, serves the API until ctx ends and
// meanwhile, in the background, creates the exporter group (retrying while
// the broker is unreachable), then runs the outbox relay and the sweeper of
// expired leases. It returns nil after a clean shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	cfg := deps.Outbox
	cfg.Publisher, cfg.Logger = deps.Publisher, deps.Logger
	// Requests stored in the outbox carry the request's trace, which the
	// relay's publish continues.
	cfg.StoreMiddleware = append(slices.Clip(cfg.StoreMiddleware), otelpubsub.PublishMiddleware(
		otelpubsub.WithTracerProvider(deps.TracerProvider), otelpubsub.WithLogger(deps.Logger)))
	if err := outbox.Migrate(ctx, deps.Store.DB(), cfg); err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	ob, err := outbox.New(deps.Store.DB(), cfg)
	if err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	s := &api{Deps: deps, topic: deps.Namespace.ExportRequested(), outbox: ob}
	stop, err := s.startGRPC(ctx)
	if err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	srv := service.Server{Name: "transactions", Listener: s.Listener, Addr: deps.Addr, Logger: deps.Logger, Background: s.background}
	err = srv.Serve(ctx, s.routes(), "transactions API listening", "database", deps.Store.Dialect(), "topic", s.topic.Name())
	return errors.Join(err, stop())
}

// api is the running service.
type api struct {
	Deps
	topic  pubsub.Topic[events.ExportRequested]
	outbox *outbox.Outbox
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

// downloadURL is the URL of export rid's download through the service:
// under PublicURL, or relative.
func (s *api) downloadURL(rid string) string {
	return s.PublicURL + "/api/Export/Download?RID=" + url.QueryEscape(rid)
}
