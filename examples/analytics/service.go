package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Deps is what the analytics service runs on.
type Deps struct {
	// Subscriber receives the events. Required.
	Subscriber pubsub.Subscriber
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Group is the consumer group (default events.GroupAnalytics).
	Group string
	// Instance names this process in GET /api/stats (default host:pid).
	Instance string
	// Counter keeps the counts (default NewCounter()).
	Counter *Counter
	// SubscribeOptions are passed to Subscribe (concurrency, retries...).
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
		return errors.New("analytics: Deps.Subscriber is required")
	}
	if d.Group == "" {
		d.Group = events.GroupAnalytics
	}
	if d.Instance == "" {
		host, _ := os.Hostname()
		d.Instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if d.Counter == nil {
		d.Counter = NewCounter()
	}
	d.Logger = service.Logger(d.Logger, "service", "analytics", "instance", d.Instance)
	return nil
}

// Run subscribes to user.activity and to the group's dead letters, then
// serves the API until ctx ends; it then stops the subscriptions, letting
// in-flight handlers finish. It returns nil after a clean shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	topic := deps.Namespace.UserActivity()
	c := service.NewConsumer("analytics", deps.Subscriber, deps.Group, deps.Logger)
	defer c.Close()
	if err := service.Subscribe(ctx, c, topic, handler(deps), deps.SubscribeOptions...); err != nil {
		return err
	}

	mux := service.Mux(deps.Metrics, health.Broker(deps.Subscriber))
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		q, err := httpx.Query(r, "user_id")
		if err != nil {
			httpx.WriteRequestError(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, struct {
			Instance string `json:"instance"`
			Group    string `json:"group"`
			Stats
		}{deps.Instance, deps.Group, deps.Counter.Snapshot(q.Get("user_id"))})
	})
	c.DeadLetters().Register(mux)
	srv := service.Server{Name: "analytics", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger}
	return srv.Serve(ctx, mux, "analytics API listening", "topic", topic.Name(), "group", deps.Group)
}

func handler(deps Deps) func(context.Context, events.UserActivity, *pubsub.Message) error {
	return func(_ context.Context, ev events.UserActivity, m *pubsub.Message) error {
		if ev.SimulatesFailureIn(deps.Group) {
			panic(fmt.Sprintf("simulated crash on event %s (attribute %s=%s)", m.ID, events.SimulateFailureAttribute, deps.Group))
		}
		if deps.Counter.Count(m.ID, ev.UserID, ev.Type) {
			deps.Logger.Info("counted", "message_id", m.ID, "user_id", ev.UserID, "type", ev.Type, "attempt", m.Attempt)
		}
		return nil
	}
}
