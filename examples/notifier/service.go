package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/examples/internal/webhook"
	"github.com/switchyard-go/switchyard/pubsub"
)

// DefaultMaxAttempts is how many times the notifier tries a webhook before
// the event is dead-lettered, unless Deps.SubscribeOptions say otherwise.
const DefaultMaxAttempts = 8

// Deps is what the notifier runs on.
type Deps struct {
	// Subscriber receives the events. Required.
	Subscriber pubsub.Subscriber
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Group is the consumer group (default events.GroupNotifier).
	Group string
	// WelcomeWebhookURL receives a welcome notification for each signed_up
	// event. Empty: welcome notifications are only logged.
	WelcomeWebhookURL string
	// Client makes the welcome webhook calls, to the operator's
	// WelcomeWebhookURL (default: a client with a 10s timeout whose calls
	// carry the trace context of the event they notify, through
	// httpx.TracedTransport).
	Client *http.Client
	// CallbackPolicy says where export callbacks (CallbackUrl, supplied by
	// API clients) may go: every call is checked, its host resolved once
	// and the checked address dialled, redirects not followed (default
	// webhook.DefaultAllow: loopback only). A refused callback is
	// dead-lettered at once.
	CallbackPolicy *webhook.Policy
	// SubscribeOptions are passed to Subscribe after the notifier's own
	// defaults (WithMaxAttempts(DefaultMaxAttempts)).
	SubscribeOptions []pubsub.SubscribeOption
	// Listener is where the API serves; if nil, Run listens on Addr.
	Listener net.Listener
	// Addr is the listen address when Listener is nil (default ":http").
	Addr string
	// Metrics, when not nil, is served at GET /metrics (the binaries serve
	// their broker's metrics there in the Prometheus format).
	Metrics http.Handler
	// Logger logs the service's events (default slog.Default()).
	Logger *slog.Logger
}

func (d *Deps) setDefaults() error {
	if d.Subscriber == nil {
		return errors.New("notifier: Deps.Subscriber is required")
	}
	if d.Group == "" {
		d.Group = events.GroupNotifier
	}
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 10 * time.Second, Transport: httpx.TracedTransport(nil)}
	}
	if d.CallbackPolicy == nil {
		p := webhook.MustParsePolicy(webhook.DefaultAllow)
		d.CallbackPolicy = &p
	}
	d.Logger = service.Logger(d.Logger, "service", "notifier")
	return nil
}

// Welcome is the body of a welcome notification.
type Welcome struct {
	Kind    string    `json:"kind"` // "welcome"
	UserID  string    `json:"user_id"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Notification is one webhook call that succeeded, as GET /api/notifications
// lists it.
type Notification struct {
	Kind      string    `json:"kind"`
	URL       string    `json:"url"`
	EventID   string    `json:"event_id"`
	Attempt   int       `json:"attempt"`
	Delivered time.Time `json:"delivered_at"`
}

// notifier is the running service: its Deps and the notifications sent.
type notifier struct {
	Deps
	callbacks *http.Client // CallbackPolicy's
	mu        sync.Mutex
	sent      []Notification
}

// Run subscribes to user.activity, export.completed, export.failed and to
// the group's dead letters of each, then serves the API until ctx ends; it
// then stops the subscriptions, letting in-flight webhook calls finish. It
// returns nil after a clean shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	s := &notifier{Deps: deps, callbacks: deps.CallbackPolicy.Client(10*time.Second, func(rt http.RoundTripper) http.RoundTripper { return httpx.TracedTransport(rt) })}
	ns := deps.Namespace
	opts := append([]pubsub.SubscribeOption{pubsub.WithMaxAttempts(DefaultMaxAttempts)}, deps.SubscribeOptions...)
	c := service.NewConsumer("notifier", deps.Subscriber, deps.Group, deps.Logger)
	defer c.Close()
	if err := service.Subscribe(ctx, c, ns.UserActivity(), s.onActivity, opts...); err != nil {
		return err
	}
	for _, t := range []pubsub.Topic[events.ExportFinished]{ns.ExportCompleted(), ns.ExportFailed()} {
		if err := service.Subscribe(ctx, c, t, s.onExportFinished, opts...); err != nil {
			return err
		}
	}

	mux := service.Mux(deps.Metrics, health.Broker(deps.Subscriber))
	mux.HandleFunc("GET /api/notifications", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		sent := append([]Notification{}, s.sent...)
		s.mu.Unlock()
		httpx.WriteJSON(w, http.StatusOK, struct {
			Notifications []Notification `json:"notifications"`
		}{sent})
	})
	c.DeadLetters().Register(mux)
	srv := service.Server{Name: "notifier", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger}
	return srv.Serve(ctx, mux, "notifier API listening", "group", deps.Group, "welcome_webhook", deps.WelcomeWebhookURL)
}

// onActivity sends the welcome notification of a signed_up event.
func (s *notifier) onActivity(ctx context.Context, ev events.UserActivity, m *pubsub.Message) error {
	if ev.SimulatesFailureIn(s.Group) {
		panic(fmt.Sprintf("simulated crash on event %s (attribute %s=%s)", m.ID, events.SimulateFailureAttribute, s.Group))
	}
	if ev.Type != events.SignedUp {
		return nil
	}
	body := Welcome{Kind: "welcome", UserID: ev.UserID, Message: fmt.Sprintf("Welcome aboard, %s!", ev.UserID), At: ev.At}
	return s.notify(ctx, s.Client, "welcome", s.WelcomeWebhookURL, m, body)
}

// onExportFinished calls the export's callback with its final status.
func (s *notifier) onExportFinished(ctx context.Context, ev events.ExportFinished, m *pubsub.Message) error {
	if ev.CallbackURL == "" {
		return nil
	}
	body := events.ExportStatus{RID: ev.RID, Status: ev.Status, Progress: ev.Rows, URL: ev.URL, Error: ev.Error}
	return s.notify(ctx, s.callbacks, "export."+ev.Status, ev.CallbackURL, m, body)
}

func (s *notifier) notify(ctx context.Context, c *http.Client, kind, url string, m *pubsub.Message, body any) error {
	if url == "" {
		s.Logger.Info("no webhook configured; notification logged only", "kind", kind, "message_id", m.ID, "body", body)
		return nil
	}
	if err := post(ctx, c, url, kind, m.ID, body); err != nil {
		s.Logger.Warn("webhook failed", "kind", kind, "url", url, "message_id", m.ID, "attempt", m.Attempt, "err", err)
		return err
	}
	s.Logger.Info("webhook delivered", "kind", kind, "url", url, "message_id", m.ID, "attempt", m.Attempt)
	s.mu.Lock()
	s.sent = append(s.sent, Notification{Kind: kind, URL: url, EventID: m.ID, Attempt: m.Attempt, Delivered: time.Now().UTC()})
	if len(s.sent) > 1000 {
		s.sent = s.sent[1:]
	}
	s.mu.Unlock()
	return nil
}
