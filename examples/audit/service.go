package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/pubsub"
)

// DefaultLimit is how many records GET /api/audit returns without limit=.
const DefaultLimit = 100

// Deps is what the audit service runs on.
type Deps struct {
	// Subscriber receives the events. Required.
	Subscriber pubsub.Subscriber
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Group is the consumer group (default events.GroupAudit).
	Group string
	// Store keeps the trail (default a new MemoryStore).
	Store Store
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
		return errors.New("audit: Deps.Subscriber is required")
	}
	if d.Group == "" {
		d.Group = events.GroupAudit
	}
	if d.Store == nil {
		d.Store = &MemoryStore{}
	}
	d.Logger = service.Logger(d.Logger, "service", "audit")
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
	c := service.NewConsumer("audit", deps.Subscriber, deps.Group, deps.Logger)
	defer c.Close()
	if err := service.Subscribe(ctx, c, topic, handler(deps), deps.SubscribeOptions...); err != nil {
		return err
	}

	mux := service.Mux(deps.Metrics, health.Broker(deps.Subscriber))
	mux.HandleFunc("GET /api/audit", listHandler(deps.Store))
	c.DeadLetters().Register(mux)
	srv := service.Server{Name: "audit", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger}
	return srv.Serve(ctx, mux, "audit API listening", "topic", topic.Name(), "group", deps.Group)
}

// handler appends each event to the store; redeliveries of a stored message
// change nothing.
func handler(deps Deps) func(context.Context, events.UserActivity, *pubsub.Message) error {
	return func(ctx context.Context, ev events.UserActivity, m *pubsub.Message) error {
		if ev.SimulatesFailureIn(deps.Group) {
			panic(fmt.Sprintf("simulated crash on event %s (attribute %s=%s)", m.ID, events.SimulateFailureAttribute, deps.Group))
		}
		added, err := deps.Store.Append(ctx, Record{MessageID: m.ID, Event: ev, ReceivedAt: time.Now().UTC()})
		if err != nil {
			return fmt.Errorf("append to the audit store: %w", err)
		}
		if added {
			deps.Logger.Info("audited", "message_id", m.ID, "user_id", ev.UserID, "type", ev.Type, "attempt", m.Attempt)
		} else {
			deps.Logger.Debug("duplicate delivery ignored", "message_id", m.ID, "attempt", m.Attempt)
		}
		return nil
	}
}

func listHandler(store Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := httpx.Query(r, "user_id", "limit")
		if err != nil {
			httpx.WriteRequestError(w, err)
			return
		}
		userID := q.Get("user_id")
		limit := DefaultLimit
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit %s is not a positive integer", httpx.Quote(s)))
				return
			}
			limit = n
		}
		recs, err := store.List(r.Context(), userID, limit)
		if err != nil {
			httpx.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, struct {
			UserID string   `json:"user_id,omitempty"`
			Count  int      `json:"count"`
			Events []Record `json:"events"`
		}{userID, len(recs), recs})
	}
}
