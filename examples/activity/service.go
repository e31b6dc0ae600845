package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/examples/internal/service"
	"github.com/switchyard-go/switchyard/pubsub"
)

// DefaultMaxBodyBytes is the request body limit when Deps.MaxBodyBytes is
// zero: 16 KiB, enough for any valid activity.
const DefaultMaxBodyBytes = 16 << 10

// DefaultGroups are the consumer groups created on user.activity at start
// when Deps.Groups is nil.
var DefaultGroups = []string{events.GroupAudit, events.GroupAnalytics, events.GroupNotifier}

// Deps is what the activity service runs on.
type Deps struct {
	// Publisher publishes the events. Required.
	Publisher pubsub.Publisher
	// Namespace prefixes topic names (default none).
	Namespace events.Namespace
	// Groups are created on user.activity before the API serves, when
	// Publisher is a pubsub.GroupCreator, so that events published before a
	// consumer first runs are kept for it. Default DefaultGroups; empty (not
	// nil) creates none.
	Groups []string
	// Listener is where the API serves; if nil, Run listens on Addr.
	Listener net.Listener
	// Addr is the listen address when Listener is nil (default ":http").
	Addr string
	// MaxBodyBytes limits request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Metrics, when not nil, is served at GET /metrics (the binaries serve
	// their broker's metrics there in the Prometheus format).
	Metrics http.Handler
	// Logger logs the service's events (default slog.Default()).
	Logger *slog.Logger
}

func (d *Deps) setDefaults() error {
	if d.Publisher == nil {
		return errors.New("activity: Deps.Publisher is required")
	}
	if d.Groups == nil {
		d.Groups = DefaultGroups
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = DefaultMaxBodyBytes
	}
	d.Logger = service.Logger(d.Logger, "service", "activity")
	return nil
}

// Run creates the consumer groups, then serves the API until ctx ends. It
// returns nil after a clean shutdown.
func Run(ctx context.Context, deps Deps) error {
	if err := deps.setDefaults(); err != nil {
		return err
	}
	topic := deps.Namespace.UserActivity()
	if err := service.CreateGroups(ctx, deps.Publisher, deps.Groups, topic.Name()); err != nil {
		return fmt.Errorf("activity: %w", err)
	}
	srv := service.Server{Name: "activity", Listener: deps.Listener, Addr: deps.Addr, Logger: deps.Logger}
	return srv.Serve(ctx, routes(deps), "activity API listening", "topic", topic.Name())
}

// routes returns the service's HTTP API for deps, defaults set.
func routes(deps Deps) http.Handler {
	topic := deps.Namespace.UserActivity()
	mux := service.Mux(deps.Metrics, health.Broker(deps.Publisher))
	mux.HandleFunc("POST /api/activity", func(w http.ResponseWriter, r *http.Request) {
		var a events.UserActivity
		if err := httpx.DecodeJSON(w, r, deps.MaxBodyBytes, &a); err != nil {
			httpx.WriteRequestError(w, err)
			return
		}
		if err := a.Validate(); err != nil {
			httpx.WriteRequestError(w, &httpx.RequestError{Status: http.StatusBadRequest, Err: err})
			return
		}
		if a.At.IsZero() {
			a.At = time.Now()
		}
		a.At = a.At.UTC()
		id := pubsub.NewID()
		if err := topic.Publish(r.Context(), deps.Publisher, a, pubsub.WithKey(a.UserID), pubsub.WithID(id)); err != nil {
			deps.Logger.Error("publish failed", "topic", topic.Name(), "user_id", a.UserID, "err", err)
			httpx.WriteError(w, http.StatusServiceUnavailable, "the event could not be published; try again")
			return
		}
		deps.Logger.Info("published", "topic", topic.Name(), "message_id", id, "user_id", a.UserID, "type", a.Type)
		httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"id": id})
	})
	return mux
}
