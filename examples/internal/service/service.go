// Package service is what the example services share around their own
// handlers and APIs: a logger named after the service, the consumer groups
// created ahead of their consumers, a consumer group's subscriptions with
// their dead letters, and the HTTP API with the probes and GET /metrics.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/switchyard-go/switchyard/examples/internal/deadletters"
	"github.com/switchyard-go/switchyard/examples/internal/health"
	"github.com/switchyard-go/switchyard/examples/internal/httpx"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Logger returns log (slog.Default() when nil) with args added to each
// record, such as "service", "audit".
func Logger(log *slog.Logger, args ...any) *slog.Logger {
	if log == nil {
		log = slog.Default()
	}
	return log.With(args...)
}

// CreateGroups creates each of groups on each of topics when b is a
// pubsub.GroupCreator, so that the messages published before a group's
// consumers first run are kept for them; otherwise it does nothing.
func CreateGroups(ctx context.Context, b any, groups []string, topics ...string) error {
	gc, ok := b.(pubsub.GroupCreator)
	if !ok {
		return nil
	}
	for _, topic := range topics {
		for _, g := range groups {
			if err := gc.CreateGroup(ctx, topic, g); err != nil {
				return fmt.Errorf("create group %s on %s: %w", g, topic, err)
			}
		}
	}
	return nil
}

// Consumer is one consumer group of a service: its subscriptions and the
// group's dead letters on the topics it subscribes to (DeadLetters). Close
// stops the subscriptions.
type Consumer struct {
	name  string
	sub   pubsub.Subscriber
	group string
	log   *slog.Logger
	dead  *deadletters.List
	subs  []*pubsub.Subscription
}

// NewConsumer returns the consumer group group of the service name (which
// prefixes Subscribe's errors), receiving from s and logging to log. Its
// dead letters are managed through s when s is a pubsub.DeadLetterAdmin.
func NewConsumer(name string, s pubsub.Subscriber, group string, log *slog.Logger) *Consumer {
	return &Consumer{name: name, sub: s, group: group, log: log, dead: deadletters.New(group, s)}
}

// DeadLetters is the group's dead letters of every topic subscribed to; the
// services serve it under /api/deadletters (deadletters.List.Register).
func (c *Consumer) DeadLetters() *deadletters.List { return c.dead }

// Close stops the subscriptions, letting in-flight handlers finish.
func (c *Consumer) Close() {
	for _, sub := range c.subs {
		_ = sub.Close()
	}
	c.subs = nil
}

// Subscribe subscribes c's group to topic with h, logging to c's logger
// (pubsub.WithLogger, then opts), and adds topic to the group's dead
// letters. The subscription runs until ctx ends or c is closed.
func Subscribe[T any](ctx context.Context, c *Consumer, topic pubsub.Topic[T], h func(context.Context, T, *pubsub.Message) error, opts ...pubsub.SubscribeOption) error {
	opts = append([]pubsub.SubscribeOption{pubsub.WithLogger(c.log)}, opts...)
	sub, err := topic.Subscribe(ctx, c.sub, c.group, h, opts...)
	if err != nil {
		return fmt.Errorf("%s: subscribe to %s: %w", c.name, topic.Name(), err)
	}
	c.subs = append(c.subs, sub)
	c.dead.Add(topic.Name())
	return nil
}

// SubscribeRaw is Subscribe for an untyped handler (such as one wrapped by
// outbox.Idempotent) on the topic named topic.
func SubscribeRaw(ctx context.Context, c *Consumer, topic string, h pubsub.Handler, opts ...pubsub.SubscribeOption) error {
	opts = append([]pubsub.SubscribeOption{pubsub.WithLogger(c.log)}, opts...)
	sub, err := c.sub.Subscribe(ctx, topic, c.group, h, opts...)
	if err != nil {
		return fmt.Errorf("%s: subscribe to %s: %w", c.name, topic, err)
	}
	c.subs = append(c.subs, sub)
	c.dead.Add(topic)
	return nil
}

// Mux returns the start of a service's API: GET /healthz and GET /readyz
// on checks (health.Register) and, when metrics is not nil, GET /metrics.
// The service adds its own routes.
func Mux(metrics http.Handler, checks ...health.Check) *http.ServeMux {
	mux := http.NewServeMux()
	health.Register(mux, checks...)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// Server is where a service serves its API.
type Server struct {
	// Name names the service in errors, such as "audit".
	Name string
	// Listener is where the API serves; if nil, Serve listens on Addr.
	Listener net.Listener
	// Addr is the listen address when Listener is nil (default ":http").
	Addr string
	// Logger logs the server's start and errors.
	Logger *slog.Logger
	// Background, when not nil, is work the service does while it serves,
	// such as a sweeper: it starts once the API listens and is given Serve's
	// context; Serve waits for it to return.
	Background func(ctx context.Context)
}

// Serve listens (httpx.Listen), logs msg with the address listened on
// ("addr") and then attrs, and serves h until ctx ends (httpx.Serve),
// running Background meanwhile; it logs "shutting down" when ctx ends and
// "stopped" once the requests in progress and Background are done. It
// returns nil after a clean shutdown.
func (s Server) Serve(ctx context.Context, h http.Handler, msg string, attrs ...any) (err error) {
	ln, err := httpx.Listen(s.Listener, s.Addr)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	started := time.Now()
	shuttingDown := func() { s.Logger.Info("shutting down", "uptime", time.Since(started).Round(time.Millisecond)) }
	logged := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { shuttingDown(); close(logged) })
	defer func() {
		switch {
		case !stop():
			<-logged // "shutting down" comes first
		case ctx.Err() == nil:
			return // Serve failed on its own; the caller reports err
		default:
			shuttingDown() // ctx ended, but the AfterFunc had not started yet
		}
		s.Logger.Info("stopped", "err", err)
	}()
	if s.Background != nil {
		done := make(chan struct{})
		go func() { defer close(done); s.Background(ctx) }()
		defer func() { <-done }()
	}
	s.Logger.Info(msg, append([]any{"addr", ln.Addr().String()}, attrs...)...)
	return httpx.Serve(ctx, ln, h, s.Logger)
}
