package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/pubsub"
)

//go:embed static
var static embed.FS

// DefaultUsers are offered in the page's user picker when Deps.Users is
// nil: the demo policy's (see package auth).
var DefaultUsers = []string{"ada", "bob", "carol"}

// History is how many recent reports a page gets when it connects.
const History = 500

// Deps is what the console runs on.
type Deps struct {
	// Subscriber receives delivery.reports in the console's own group;
	// nil: no live events.
	Subscriber pubsub.Subscriber
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Instance names the console's group, "console.<Instance>" (default a
	// random name).
	Instance string
	// DeadLetterAPIs maps consumer group names to the base URL of the
	// service that serves the group's dead letters (GET /api/deadletters,
	// POST /api/deadletters/replay), such as {"analytics":
	// "http://localhost:8093"}.
	DeadLetterAPIs map[string]string
	// ActivityURL is the base URL of the activity service, to which the
	// page's activities are posted (empty: the page cannot post).
	ActivityURL string
	// ExportAPI, when set, is the base URL of the transactions service, to
	// which /api/Export... is forwarded; leave it empty when the console is
	// mounted in the transactions service.
	ExportAPI string
	// Users are offered in the page's user picker (default DefaultUsers).
	Users []string
	// Client calls the other services (default a client with a 10s
	// timeout).
	Client *http.Client
	// Logger logs the console's events (default slog.Default()).
	Logger *slog.Logger
}

// Console serves the page and its API. It is an http.Handler for the
// paths under /console/ (and /api/Export... with Deps.ExportAPI). Close it
// when done.
type Console struct {
	deps  Deps
	group string
	mux   *http.ServeMux
	sub   *pubsub.Subscription
	done  chan struct{} // closed by endStreams
	end   sync.Once

	mu      sync.Mutex
	recent  []events.DeliveryReport // ring of the last History
	clients map[chan events.DeliveryReport]struct{}
	closed  bool
}

// New subscribes the console's group to delivery.reports (when
// Deps.Subscriber is set) and returns the console. The pages' event streams
// end when ctx ends; the subscription runs until Close.
func New(ctx context.Context, deps Deps) (*Console, error) {
	if deps.Users == nil {
		deps.Users = DefaultUsers
	}
	if deps.Client == nil {
		deps.Client = &http.Client{Timeout: 10 * time.Second, Transport: httpx.TracedTransport(nil)}
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	deps.Logger = deps.Logger.With("service", "console")
	if deps.Instance == "" {
		deps.Instance = pubsub.NewID()[:10]
	}
	c := &Console{deps: deps, group: "console." + deps.Instance, done: make(chan struct{}), clients: map[chan events.DeliveryReport]struct{}{}}
	if deps.Subscriber != nil {
		topic := deps.Namespace.DeliveryReports()
		sub, err := topic.Subscribe(context.WithoutCancel(ctx), deps.Subscriber, c.group, func(_ context.Context, r events.DeliveryReport, _ *pubsub.Message) error {
			c.deliver(r)
			return nil
		}, pubsub.WithLogger(deps.Logger))
		if err != nil {
			return nil, fmt.Errorf("console: subscribe to %s: %w", topic.Name(), err)
		}
		c.sub = sub
	}
	c.routes()
	// The pages' streams end with ctx, so that an HTTP server's graceful
	// shutdown does not wait for them.
	context.AfterFunc(ctx, c.endStreams)
	return c, nil
}

// endStreams ends the pages' event streams.
func (c *Console) endStreams() { c.end.Do(func() { close(c.done) }) }

// Close stops the subscription, ends the pages' event streams and deletes
// the console's group. It is idempotent.
func (c *Console) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.endStreams()
	if c.sub == nil {
		return nil
	}
	err := c.sub.Close()
	if gd, ok := c.deps.Subscriber.(pubsub.GroupDeleter); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if derr := gd.DeleteGroup(ctx, c.deps.Namespace.DeliveryReports().Name(), c.group); derr != nil && !errors.Is(derr, pubsub.ErrNotFound) {
			err = errors.Join(err, fmt.Errorf("console: delete group %s: %w", c.group, derr))
		}
	}
	return err
}

// ServeHTTP serves the console's routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

func (c *Console) routes() {
	c.mux = http.NewServeMux()
	files, _ := fs.Sub(static, "static")
	c.mux.Handle("GET /console/", http.StripPrefix("/console/", http.FileServerFS(files)))
	c.mux.HandleFunc("GET /console/api/config", c.config)
	c.mux.HandleFunc("GET /console/api/live", c.live)
	c.mux.HandleFunc("POST /console/api/activity", c.postActivity)
	c.mux.HandleFunc("GET /console/api/deadletters", c.deadLetters)
	c.mux.HandleFunc("POST /console/api/deadletters/replay", c.replay)
	if c.deps.ExportAPI != "" {
		if u, err := url.Parse(c.deps.ExportAPI); err == nil {
			p := httputil.NewSingleHostReverseProxy(u)
			p.Transport = httpx.TracedTransport(nil)
			c.mux.Handle("/api/Export", p)
			c.mux.Handle("/api/Export/", p)
		}
	}
}

// Config answers GET /console/api/config.
type Config struct {
	Users []string `json:"users"`
	// Groups have dead letters the console lists, sorted.
	Groups []string `json:"groups"`
	// ActivityTypes are the types the page offers.
	ActivityTypes []string `json:"activity_types"`
	// Live tells whether delivery reports are received; Activity whether
	// activities can be posted.
	Live     bool `json:"live"`
	Activity bool `json:"activity"`
	// Topic is the user-activity topic's full name.
	Topic string `json:"topic"`
}

func (c *Console) config(w http.ResponseWriter, _ *http.Request) {
	groups := make([]string, 0, len(c.deps.DeadLetterAPIs))
	for g := range c.deps.DeadLetterAPIs {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	httpx.WriteJSON(w, http.StatusOK, Config{Users: c.deps.Users, Groups: groups, ActivityTypes: events.ActivityTypes,
		Live: c.sub != nil, Activity: c.deps.ActivityURL != "", Topic: c.deps.Namespace.UserActivity().Name()})
}

// deliver keeps r in the recent reports and hands it to every page.
func (c *Console) deliver(r events.DeliveryReport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recent = append(c.recent, r)
	if len(c.recent) > History {
		c.recent = slices.Delete(c.recent, 0, len(c.recent)-History)
	}
	for ch := range c.clients {
		select {
		case ch <- r:
		default:
			// The page does not keep up: end its stream rather than skip
			// reports; its EventSource reconnects and gets the recent ones.
			delete(c.clients, ch)
			close(ch)
		}
	}
}
