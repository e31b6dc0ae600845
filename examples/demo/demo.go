package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-go/switchyard/examples/activity"
	"github.com/switchyard-go/switchyard/examples/analytics"
	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/telemetry"
	"github.com/switchyard-go/switchyard/examples/notifier"
	"github.com/switchyard-go/switchyard/examples/storage"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/examples/txstore"
	"github.com/switchyard-go/switchyard/examples/webhooksink"
	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
)

// Defaults of Config.
const (
	DefaultPubSubURL = "mem://demo"
	DefaultHost      = "127.0.0.1"
	DefaultBasePort  = 8091
	DefaultSeed      = 5000
	DefaultTimeout   = 30 * time.Second
)

// Config configures the demo. The zero value runs every default.
type Config struct {
	// PubSubURL is the broker (default DefaultPubSubURL).
	PubSubURL string
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Host is the address the HTTP APIs listen on (default DefaultHost).
	Host string
	// BasePort is the first port: the services listen on BasePort,
	// BasePort+1, ... (in the order of the listing); the metrics on BasePort+7
	// (MetricsPort), the webhook sink on BasePort+8.
	// Default DefaultBasePort; negative: any free ports.
	BasePort int
	// DatabaseURL is the database (default: a SQLite file in a temporary
	// directory, removed at exit).
	DatabaseURL string
	// StorageURL is where exports go (default: a temporary directory).
	StorageURL string
	// Seed is how many sample transactions an empty database gets (default
	// DefaultSeed).
	Seed int
	// Scenario runs the scripted flow once the services are up, and makes
	// Run return its result instead of serving until ctx ends.
	Scenario bool
	// Timeout bounds the scenario (default DefaultTimeout).
	Timeout time.Duration
	// Out receives the listing of the APIs and the scenario's report
	// (default os.Stdout).
	Out io.Writer
	// Logger receives the services' logs, the events flowing (default
	// slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.PubSubURL == "" {
		c.PubSubURL = DefaultPubSubURL
	}
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.BasePort == 0 {
		c.BasePort = DefaultBasePort
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// service is one running service of the demo.
type service struct {
	name, what string
	port       int // offset from BasePort
	run        func(ctx context.Context, b pubsub.Broker, ln net.Listener) error
	url        string
}

// MetricsPort is the offset from Config.BasePort of the listener that serves
// GET /metrics: every service's broker metrics, in the Prometheus text
// format.
const MetricsPort = 7

// Demo is the services that Start started. Close stops them.
type Demo struct {
	cfg     Config
	ctx     context.Context // ends when Close is called or a service fails
	cancel  context.CancelFunc
	sink    *webhooksink.Sink
	urls    map[string]string
	wg      sync.WaitGroup
	errc    chan error
	cleanup []func() error // run by Close in reverse order
	close   sync.Once
	err     error // Close's
	// what goRun started (grpc.go)
	extraWG  sync.WaitGroup
	extraErr atomic.Value
}

// Run starts every service, prints where each listens, and serves until ctx
// ends (returning nil) — or, with Config.Scenario, runs the scenario and
// returns nil when every expected event arrived, an error naming what was
// missing otherwise. The services are stopped before Run returns.
func Run(ctx context.Context, cfg Config) (err error) {
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.Close()) }()
	if !d.cfg.Scenario {
		printTry(d.cfg.Out, d.urls)
		<-d.ctx.Done()
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	return d.Scenario(sctx)
}

// Start starts every service, each on a broker handle of its own (opened
// from Config.PubSubURL and instrumented with otelpubsub, all recording to
// one MeterProvider served at GET /metrics), waits until each answers
// /healthz, and prints where each listens. The services run until ctx ends
// or Close is called; the caller must call Close.
func Start(ctx context.Context, cfg Config) (_ *Demo, err error) {
	cfg.setDefaults()
	log := cfg.Logger
	ctx, cancel := context.WithCancel(ctx)
	d := &Demo{cfg: cfg, ctx: ctx, cancel: cancel, urls: map[string]string{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
		}
	}()
	tmp, err := os.MkdirTemp("", "switchyard-demo-")
	if err != nil {
		return nil, err
	}
	d.onClose(func() error { return os.RemoveAll(tmp) })
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(tmp, "transactions.db")
	}
	if cfg.StorageURL == "" {
		cfg.StorageURL = "file://" + filepath.ToSlash(filepath.Join(tmp, "exports"))
	}
	store, err := txstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	d.onClose(store.Close)
	if _, err := store.Seed(ctx, cfg.Seed, nil); err != nil {
		return nil, err
	}
	files, err := storage.Open(cfg.StorageURL)
	if err != nil {
		return nil, err
	}
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		return nil, err
	}
	d.onClose(func() error { return metrics.Shutdown(context.Background()) })

	d.onClose(d.waitExtras)
	x, err := d.startExtras(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	ns := cfg.Namespace
	d.sink = webhooksink.New(log)
	sinkURL := "" // set once listening, before the notifier starts
	txURL := ""   // the transactions service's, its PublicURL
	svcs := []*service{
		{name: "webhook-sink", port: 8, what: "GET /api/webhooks (receives the notifier's calls)", run: func(ctx context.Context, _ pubsub.Broker, ln net.Listener) error {
			return webhooksink.Run(ctx, webhooksink.Deps{Sink: d.sink, Listener: ln, Logger: log})
		}},
		{name: "metrics", port: MetricsPort, what: "GET /metrics (Prometheus: every service's broker metrics)", run: func(ctx context.Context, _ pubsub.Broker, ln net.Listener) error {
			mux := http.NewServeMux()
			health.Register(mux)
			mux.Handle("GET /metrics", metrics.Handler)
			return httpx.Serve(ctx, ln, mux, log)
		}},
		{name: "audit", port: 1, what: "GET /api/audit?user_id=U, GET /api/deadletters", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return audit.Run(ctx, audit.Deps{Subscriber: b, Namespace: ns, Listener: ln, Logger: log})
		}},
		{name: "analytics", port: 2, what: "GET /api/stats, GET /api/deadletters", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return analytics.Run(ctx, analytics.Deps{Subscriber: b, Namespace: ns, Instance: "analytics-1", Listener: ln, Logger: log})
		}},
		{name: "notifier", port: 3, what: "GET /api/notifications, GET /api/deadletters", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return notifier.Run(ctx, notifier.Deps{Subscriber: b, Namespace: ns, WelcomeWebhookURL: sinkURL + "/hooks/welcome", Listener: ln, Logger: log})
		}},
		{name: "exporter-1", port: 5, what: "competing consumer of export.requested", run: exporterRun(ns, store, files, "exporter-1", log)},
		{name: "exporter-2", port: 6, what: "competing consumer of export.requested", run: exporterRun(ns, store, files, "exporter-2", log)},
		{name: "transactions", port: 4, what: "GET /api/Export?StartDate&EndDate, POST /api/Export, GET /api/Export/Status?RID, GET /api/Export/Download?RID", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return transactions.Run(ctx, transactions.Deps{Store: store, Storage: files, Publisher: b, Namespace: ns, PublicURL: txURL, SweepInterval: time.Second, Listener: ln, Logger: log,
				GRPCListener: x.grpcLn, Auth: x.auth})
		}},
		{name: "activity", port: 0, what: "POST /api/activity", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return activity.Run(ctx, activity.Deps{Publisher: b, Namespace: ns, Listener: ln, Logger: log})
		}},
	}
	svcs = append(svcs, &service{name: "console", port: ConsolePort, what: consoleWhat, run: consoleService(ns, log, func(name string) string {
		for _, s := range svcs {
			if s.name == name {
				return s.url
			}
		}
		return ""
	})})

	d.errc = make(chan error, len(svcs))
	d.onClose(func() error {
		d.cancel()
		d.wg.Wait()
		close(d.errc)
		var err error
		for e := range d.errc {
			err = errors.Join(err, e)
		}
		return err
	})
	for _, s := range svcs {
		ln, err := listen(cfg, s.port)
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", s.name, err)
		}
		s.url = "http://" + ln.Addr().String()
		switch s.name {
		case "webhook-sink":
			sinkURL = s.url
		case "transactions":
			txURL = s.url
		}
		var b pubsub.Broker
		if s.name != "webhook-sink" && s.name != "metrics" {
			blog := log.With("service", s.name) // the broker's own lines name their service
			b, err = cmdutil.OpenBrokerWith(ctx, cfg.PubSubURL, blog, x.brokerOpts, otelpubsub.WithMeterProvider(metrics.Provider), otelpubsub.WithLogger(blog))
			if err != nil {
				_ = ln.Close()
				return nil, fmt.Errorf("demo: %w", err)
			}
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if b != nil {
				defer b.Close()
			}
			if err := s.run(ctx, b, ln); err != nil {
				d.errc <- fmt.Errorf("demo: %s: %w", s.name, err)
				d.cancel()
			}
		}()
		// Start in order: consumers are subscribed before producers serve.
		if err := waitReady(ctx, s.url); err != nil {
			return nil, fmt.Errorf("demo: %s did not start: %w", s.name, err)
		}
	}
	fmt.Fprintf(cfg.Out, "Switchyard demo: every service in one process on %s, database %s\n", redact.URL(cfg.PubSubURL), redact.URL(cfg.DatabaseURL))
	listing := slices.SortedFunc(slices.Values(svcs), func(a, b *service) int { return a.port - b.port })
	for _, s := range listing {
		d.urls[s.name] = s.url
		fmt.Fprintf(cfg.Out, "  %-13s %-24s %s\n", s.name, s.url, s.what)
	}
	x.print(cfg.Out, d.urls)
	return d, nil
}

// onClose adds f to what Close does, before what was added earlier.
func (d *Demo) onClose(f func() error) { d.cleanup = append(d.cleanup, f) }

// URL returns the base URL of the service named name ("activity", "audit",
// "analytics", "notifier", "transactions", "exporter-1", "exporter-2",
// "webhook-sink", "metrics" or "console"; "auth" and "transactions-grpc"
// give host:port of the gRPC listeners), empty for another name.
func (d *Demo) URL(name string) string { return d.urls[name] }

// Scenario runs the scripted flow against the services and returns nil when
// every expected event arrived before ctx ended, an error naming what was
// missing otherwise. It stops early when a service fails.
func (d *Demo) Scenario(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.ctx, cancel)
	defer stop()
	return runScenario(ctx, d.cfg.Out, d.urls, d.sink)
}

// Close stops the services, waiting for each to finish, closes the
// database and removes the temporary directory. It returns the errors of
// services that failed. It is idempotent.
func (d *Demo) Close() error {
	d.close.Do(func() {
		d.cancel()
		for i := len(d.cleanup) - 1; i >= 0; i-- {
			d.err = errors.Join(d.err, d.cleanup[i]())
		}
	})
	return d.err
}

func exporterRun(ns events.Namespace, store *txstore.Store, files storage.Storage, name string, log *slog.Logger) func(context.Context, pubsub.Broker, net.Listener) error {
	return func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
		return exporter.Run(ctx, exporter.Deps{Broker: b, Store: store, Storage: files, Namespace: ns, Worker: name, Listener: ln, Logger: log})
	}
}

func listen(cfg Config, offset int) (net.Listener, error) {
	port := 0
	if cfg.BasePort > 0 {
		port = cfg.BasePort + offset
	}
	return net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
}

// waitReady waits until base answers /healthz.
func waitReady(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func printTry(w io.Writer, u map[string]string) {
	fmt.Fprintf(w, `
Try (Ctrl-C stops the demo):
  curl -s -X POST %[1]s/api/activity -H 'Content-Type: application/json' -d '{"user_id":"ada","type":"signed_up"}'
  curl -s -X POST %[1]s/api/activity -H 'Content-Type: application/json' -d '{"user_id":"ada","type":"viewed_page","attributes":{"simulate_failure":"analytics"}}'
  curl -s '%[2]s/api/audit?user_id=ada'
  curl -s %[3]s/api/stats
  curl -s %[3]s/api/deadletters
  curl -s %[4]s/api/webhooks
  curl -s '%[5]s/api/Export?StartDate=2025-01-01&EndDate=2025-01-31' | head
  curl -s -X POST %[5]s/api/Export -H 'Content-Type: application/json' -d '{"StartDate":"2025-01-01","EndDate":"2025-03-31","CallbackUrl":"%[4]s/hooks/export"}'
  curl -s '%[5]s/api/Export/Status?RID=<RID>'
  curl -s '%[5]s/api/Export/Download?RID=<RID>' | head
  curl -s %[1]s/readyz                     # every service: /healthz (alive), /readyz (broker and database answer)
  curl -s %[6]s/metrics | grep -E '^(messaging_client|switchyard)_'   # Prometheus

`, u["activity"], u["audit"], u["analytics"], u["webhook-sink"], u["transactions"], u["metrics"])
}
