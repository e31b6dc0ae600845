package audit

import (
	"context"
	"database/sql"
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
	"github.com/switchyard-go/switchyard/pubsub/outbox"
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
	// Store keeps the trail (default a new MemoryStore, or a SQLStore on DB
	// when DB is set).
	Store Store
	// DB, when not nil, is a SQL database (PostgreSQL or SQLite) that keeps
	// the trail (a SQLStore, unless Store is set to one) and the inbox that
	// deduplicates deliveries (outbox.Idempotent): each message's record
	// and the inbox's note of it commit together, so a message delivered or
	// published twice is recorded once, also across restarts. Without it
	// the trail is in memory and duplicates are told by message ID there.
	DB *sql.DB
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
	if d.Store == nil && d.DB == nil {
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
	if deps.DB != nil {
		if err := subscribeInbox(ctx, c, &deps, topic.Name()); err != nil {
			return err
		}
	} else if err := service.Subscribe(ctx, c, topic, handler(deps), deps.SubscribeOptions...); err != nil {
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

// subscribeInbox subscribes with the handler of a SQL trail: through the
// inbox (outbox.Idempotent), in one transaction with the record.
func subscribeInbox(ctx context.Context, c *service.Consumer, deps *Deps, topic string) error {
	if err := outbox.Migrate(ctx, deps.DB, outbox.Config{}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	store, ok := deps.Store.(*SQLStore)
	if !ok {
		s, err := NewSQLStore(ctx, deps.DB)
		if err != nil {
			return err
		}
		store, deps.Store = s, s
	}
	log := deps.Logger
	h := outbox.Idempotent(deps.DB, deps.Group, func(ctx context.Context, tx *sql.Tx, m *pubsub.Message) error {
		var ev events.UserActivity
		if err := pubsub.JSON.Decode(m.Payload, &ev); err != nil {
			return pubsub.Permanent(fmt.Errorf("decode user.activity: %w", err))
		}
		if ev.SimulatesFailureIn(deps.Group) {
			panic(fmt.Sprintf("simulated crash on event %s (attribute %s=%s)", m.ID, events.SimulateFailureAttribute, deps.Group))
		}
		if _, err := store.AppendTx(ctx, tx, Record{MessageID: m.ID, Event: ev, ReceivedAt: time.Now().UTC()}); err != nil {
			return err
		}
		log.Info("audited", "message_id", m.ID, "user_id", ev.UserID, "type", ev.Type, "attempt", m.Attempt)
		return nil
	}, outbox.WithInboxLogger(log), outbox.WithInboxObserver(outbox.Observer{OnDuplicate: func(_ context.Context, _ string, m *pubsub.Message) {
		log.Debug("duplicate delivery ignored (inbox)", "message_id", m.ID, "attempt", m.Attempt)
	}}))
	return service.SubscribeRaw(ctx, c, topic, h, deps.SubscribeOptions...)
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
