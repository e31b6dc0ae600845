// Package cmdutil is the little that the example binaries share: flags
// defaulting to environment variables, a logger, a signal-bound context, and
// the broker from PUBSUB_URL, instrumented with OpenTelemetry (otelpubsub)
// and its metrics served for Prometheus.
package cmdutil

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/reports"
	"github.com/switchyard-go/switchyard/examples/internal/telemetry"
	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
)

// DefaultPubSubURL is the broker when PUBSUB_URL is not set.
const DefaultPubSubURL = "mem://"

// Env returns the environment variable key, or def when it is empty.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// DefaultDatabaseURL is the SQLite file the transactions service and the
// exporters share when DATABASE_URL is not set.
func DefaultDatabaseURL() string {
	return "sqlite:" + filepath.Join(os.TempDir(), "switchyard-transactions.db")
}

// DefaultStorageURL is the directory the exporters write to and the
// transactions service reads from when STORAGE_URL is not set.
func DefaultStorageURL() string {
	return "file://" + filepath.ToSlash(filepath.Join(os.TempDir(), "switchyard-exports"))
}

// DefaultHost is the address the binaries listen on when -addr (ADDR)
// gives only a port, as their defaults do: loopback, so that a service is
// not exposed to the network until asked (-addr 0.0.0.0:8095).
const DefaultHost = "127.0.0.1"

// Common holds the settings every example binary has.
type Common struct {
	// Service names the binary's service in the lines its broker logs
	// ("service" attribute), as the service's own lines are named.
	Service   string
	PubSubURL string
	Namespace string
	Addr      string
	LogLevel  string

	metrics *telemetry.Metrics // set by OpenBroker
}

// Register adds -pubsub-url (PUBSUB_URL), -namespace (PUBSUB_NAMESPACE),
// -addr (ADDR, default defaultAddr, on DefaultHost when it gives only a
// port such as ":8095") and -log-level (LOG_LEVEL) to the default flag
// set.
func (c *Common) Register(defaultAddr string) { c.RegisterOn(flag.CommandLine, defaultAddr) }

// RegisterOn is Register on fs.
func (c *Common) RegisterOn(fs *flag.FlagSet, defaultAddr string) {
	if strings.HasPrefix(defaultAddr, ":") {
		defaultAddr = DefaultHost + defaultAddr
	}
	fs.StringVar(&c.PubSubURL, "pubsub-url", Env("PUBSUB_URL", DefaultPubSubURL), "broker URL: mem://, amqp://USER:PASS@HOST:5672/, nats://HOST:4222, gcppubsub://PROJECT (env PUBSUB_URL)")
	fs.StringVar(&c.Namespace, "namespace", Env("PUBSUB_NAMESPACE", ""), "prefix of every topic name, to share a broker between deployments; a '.' is added unless it ends in '.', '-' or '_' (env PUBSUB_NAMESPACE)")
	fs.StringVar(&c.Addr, "addr", Env("ADDR", defaultAddr), "HTTP listen address; 0.0.0.0:PORT for every interface (env ADDR)")
	fs.StringVar(&c.LogLevel, "log-level", Env("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
}

// NS returns the namespace as an events.Namespace (checked by Main; see
// events.ParseNamespace).
func (c *Common) NS() events.Namespace {
	ns, _ := events.ParseNamespace(c.Namespace)
	return ns
}

// brokerLog is the logger of the broker's own lines: log with "service"
// set to c.Service.
func (c *Common) brokerLog(log *slog.Logger) *slog.Logger {
	if c.Service == "" {
		return log
	}
	return log.With("service", c.Service)
}

// Logger returns a text logger on stderr at the level asked for.
func (c *Common) Logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// OpenBroker opens url with transport.Open, instrumented with
// otelpubsub.Instrument(opts...) so that its publishes and deliveries are
// traced (the global TracerProvider: no spans until the application
// installs one), measured (otelpubsub.WithMeterProvider, else the global
// MeterProvider) and logged; messaging.system follows the URL's scheme.
// The broker and its subscriptions log to log. Every example opens its
// brokers here.
func OpenBroker(ctx context.Context, url string, log *slog.Logger, opts ...otelpubsub.Option) (pubsub.Broker, error) {
	return OpenBrokerWith(ctx, url, log, nil, opts...)
}

// OpenBroker opens PubSubURL with the package's OpenBroker, logging where
// (without the password). Its metrics go to a MeterProvider of the
// binary's own, served by Metrics; its lines carry service=Service.
func (c *Common) OpenBroker(ctx context.Context, log *slog.Logger) (pubsub.Broker, error) {
	if c.metrics == nil {
		m, err := telemetry.NewMetrics()
		if err != nil {
			return nil, err
		}
		c.metrics = m
	}
	blog := c.brokerLog(log)
	var brokerOpts []pubsub.BrokerOption
	var rep *reports.Reporter
	if Reporting() {
		rep = c.newReporter(blog)
		brokerOpts = append(brokerOpts, rep.Option())
	}
	b, err := OpenBrokerWith(ctx, c.PubSubURL, blog, brokerOpts, otelpubsub.WithMeterProvider(c.metrics.Provider), otelpubsub.WithLogger(blog))
	if err != nil {
		return nil, err
	}
	if rep != nil {
		go rep.Run(ctx, b)
	}
	blog.Info("broker open", "url", redact.URL(c.PubSubURL))
	if strings.HasPrefix(c.PubSubURL, "mem:") {
		log.Warn("mem:// is a broker inside this process: other processes do not see its events; use amqp://, nats:// or gcppubsub:// to connect separate binaries, or run examples/cmd/demo")
	}
	return b, nil
}

// OpenBrokerLazy is OpenBroker in the background (NewLazyBroker): it
// returns at once, and the broker opens, retrying, when it can. For a
// service that must start, and accept work into an outbox, while the
// broker is unreachable.
func (c *Common) OpenBrokerLazy(log *slog.Logger) (*LazyBroker, error) {
	if c.metrics == nil {
		m, err := telemetry.NewMetrics()
		if err != nil {
			return nil, err
		}
		c.metrics = m
	}
	blog := c.brokerLog(log)
	return NewLazyBroker(func(ctx context.Context) (pubsub.Broker, error) {
		return OpenBroker(ctx, c.PubSubURL, blog, otelpubsub.WithMeterProvider(c.metrics.Provider), otelpubsub.WithLogger(blog))
	}, c.PubSubURL, blog), nil
}

// Metrics returns the handler of GET /metrics: the broker's metrics (see
// otelpubsub) and the Go runtime's, in the Prometheus text format. It is
// nil before OpenBroker.
func (c *Common) Metrics() http.Handler {
	if c.metrics == nil {
		return nil
	}
	return c.metrics.Handler
}

// Main is the package's Main for a binary on the broker at PubSubURL: run
// gets the logger at LogLevel and the broker, opened with c.OpenBroker and
// closed once run returns.
func (c *Common) Main(run func(ctx context.Context, log *slog.Logger, b pubsub.Broker) error) {
	Main(func(ctx context.Context) error {
		log := c.Logger()
		if err := c.Check(); err != nil {
			return err
		}
		b, err := c.OpenBroker(ctx, log)
		if err != nil {
			return err
		}
		defer b.Close()
		return run(ctx, log, b)
	})
}

// Check checks the settings (the namespace).
func (c *Common) Check() error {
	if _, err := events.ParseNamespace(c.Namespace); err != nil {
		return fmt.Errorf("-namespace: %w", err)
	}
	return nil
}

// Main runs run with a context cancelled by SIGINT or SIGTERM, and exits 1
// with the error if it fails. Flags must be registered before; Main parses
// them.
func Main(run func(ctx context.Context) error) {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		stop()
		os.Exit(1)
	}
}
