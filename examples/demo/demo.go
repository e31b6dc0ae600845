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
	"time"

	"github.com/switchyard-go/switchyard/examples/activity"
	"github.com/switchyard-go/switchyard/examples/analytics"
	"github.com/switchyard-go/switchyard/examples/audit"
	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/exporter"
	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
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
	// BasePort+1, ... (see Services); the webhook sink on BasePort+8.
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

// Run starts every service, prints where each listens, and serves until ctx
// ends (returning nil) — or, with Config.Scenario, runs the scenario and
// returns nil when every expected event arrived, an error naming what was
// missing otherwise. The services are stopped before Run returns.
func Run(ctx context.Context, cfg Config) (err error) {
	cfg.setDefaults()
	log := cfg.Logger
	tmp, err := os.MkdirTemp("", "switchyard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(tmp, "transactions.db")
	}
	if cfg.StorageURL == "" {
		cfg.StorageURL = "file://" + filepath.ToSlash(filepath.Join(tmp, "exports"))
	}
	store, err := txstore.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Seed(ctx, cfg.Seed, nil); err != nil {
		return err
	}
	files, err := storage.Open(cfg.StorageURL)
	if err != nil {
		return err
	}

	ns := cfg.Namespace
	sink := webhooksink.New(log)
	sinkURL := "" // set once listening, before the notifier starts
	svcs := []*service{
		{name: "webhook-sink", port: 8, what: "GET /api/webhooks (receives the notifier's calls)", run: func(ctx context.Context, _ pubsub.Broker, ln net.Listener) error {
			return webhooksink.Run(ctx, webhooksink.Deps{Sink: sink, Listener: ln, Logger: log})
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
			return transactions.Run(ctx, transactions.Deps{Store: store, Storage: files, Publisher: b, Namespace: ns, SweepInterval: time.Second, Listener: ln, Logger: log})
		}},
		{name: "activity", port: 0, what: "POST /api/activity", run: func(ctx context.Context, b pubsub.Broker, ln net.Listener) error {
			return activity.Run(ctx, activity.Deps{Publisher: b, Namespace: ns, Listener: ln, Logger: log})
		}},
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(svcs))
	defer func() {
		cancel()
		wg.Wait()
		close(errc)
		for e := range errc {
			err = errors.Join(err, e)
		}
	}()
	for _, s := range svcs {
		ln, err := listen(cfg, s.port)
		if err != nil {
			return fmt.Errorf("demo: %s: %w", s.name, err)
		}
		s.url = "http://" + ln.Addr().String()
		if s.name == "webhook-sink" {
			sinkURL = s.url
		}
		b, err := cmdutil.OpenBroker(ctx, cfg.PubSubURL, otelpubsub.WithLogger(log))
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("demo: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.Close()
			if err := s.run(ctx, b, ln); err != nil {
				errc <- fmt.Errorf("demo: %s: %w", s.name, err)
				cancel()
			}
		}()
		// Start in order: consumers are subscribed before producers serve.
		if err := waitReady(ctx, s.url); err != nil {
			return fmt.Errorf("demo: %s did not start: %w", s.name, err)
		}
	}
	byName := map[string]string{}
	fmt.Fprintf(cfg.Out, "Switchyard demo: every service in one process on %s, database %s\n", redact.URL(cfg.PubSubURL), redact.URL(cfg.DatabaseURL))
	listing := slices.SortedFunc(slices.Values(svcs), func(a, b *service) int { return a.port - b.port })
	for _, s := range listing {
		byName[s.name] = s.url
		fmt.Fprintf(cfg.Out, "  %-13s %-24s %s\n", s.name, s.url, s.what)
	}
	if !cfg.Scenario {
		printTry(cfg.Out, byName)
		<-ctx.Done()
		return nil
	}
	sctx, scancel := context.WithTimeout(ctx, cfg.Timeout)
	defer scancel()
	return runScenario(sctx, cfg.Out, byName, sink)
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

`, u["activity"], u["audit"], u["analytics"], u["webhook-sink"], u["transactions"])
}
