package pubsub

import (
	"context"
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	DefaultConcurrency    = 10
	DefaultMaxAttempts    = 5
	DefaultBackoffInitial = 100 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultDrainTimeout   = 30 * time.Second
)

// SubscribeOption configures one Subscription (Subscribe's opts). Options
// are applied in order, over the broker's defaults; an out-of-range value
// makes Subscribe return ErrInvalidOption.
type SubscribeOption interface{ applySubscribe(*subscribeConfig) }

// BrokerOption configures a Client: give it to transport.Open or to a
// transport's constructor. Options are applied in order; an out-of-range
// value makes the constructor return ErrInvalidOption.
type BrokerOption interface{ applyBroker(*brokerConfig) }

// Option is both a SubscribeOption and a BrokerOption. Given to a broker, it
// sets the default of every Subscription of that broker; given to
// Subscribe, it sets it for that Subscription only. Middleware and
// observers add up: the broker's run outside the subscription's.
type Option interface {
	SubscribeOption
	BrokerOption
}

// option is an Option: f applies to a subscription's configuration, or to
// the broker's defaults for subscriptions.
type option func(*subscribeConfig)

func (f option) applySubscribe(c *subscribeConfig) { f(c) }
func (f option) applyBroker(c *brokerConfig)       { f(&c.sub) }

// subscribeOnly is a SubscribeOption that a broker cannot take.
type subscribeOnly func(*subscribeConfig)

func (f subscribeOnly) applySubscribe(c *subscribeConfig) { f(c) }

// brokerOnly is a BrokerOption that Subscribe cannot take.
type brokerOnly func(*brokerConfig)

func (f brokerOnly) applyBroker(c *brokerConfig) { f(c) }

// WithConcurrency sets how many handlers of a subscription run at once.
// Default DefaultConcurrency (10); n must be at least 1. With n = 1 a
// subscription handles its messages one at a time, in delivery order.
func WithConcurrency(n int) Option {
	return option(func(c *subscribeConfig) { c.concurrency = n })
}

// WithMaxAttempts sets how many times a group's handlers run a message
// before it is dead-lettered. Default DefaultMaxAttempts (5); n must be at
// least 1 (1: no retries).
func WithMaxAttempts(n int) Option {
	return option(func(c *subscribeConfig) { c.maxAttempts = n })
}

// WithBackoff sets the redelivery delay after a failure: initial after the
// first attempt, doubling each attempt up to max, with "equal jitter" (each
// delay is drawn uniformly from [d/2, d]). Defaults 100ms and 30s; initial
// must be positive and max at least initial.
func WithBackoff(initial, max time.Duration) Option {
	return option(func(c *subscribeConfig) { c.backoffInitial, c.backoffMax = initial, max })
}

// WithDeadLetter makes a subscription publish its dead letters to topic, as
// ordinary messages for whoever subscribes there, instead of storing them in
// the group's own dead letters (the default, managed with DeadLetterAdmin).
// topic must be a valid topic name.
func WithDeadLetter(topic string) SubscribeOption {
	return subscribeOnly(func(c *subscribeConfig) { c.deadLetterTopic = topic })
}

// WithDrainTimeout bounds how long Subscription.Close (and a cancelled
// Subscribe context) waits for in-flight handlers; given to a broker, it
// also bounds Broker.Close. Default DefaultDrainTimeout (30s); it must be
// positive.
func WithDrainTimeout(d time.Duration) Option {
	return option(func(c *subscribeConfig) { c.drainTimeout = d })
}

// WithLogger sets the logger: for a subscription, its events (handler
// failures at Debug, a panic at Error with its stack, dead letters at Warn,
// failures to settle a message with the broker at Error), with topic, group
// and message id attributes; for a broker, also the transport's own events
// (a lost connection, a reconnection). Default slog.Default(); nil discards.
func WithLogger(l *slog.Logger) Option {
	if l == nil {
		l = discardLogger
	}
	return option(func(c *subscribeConfig) { c.logger = l })
}

var discardLogger = slog.New(slog.DiscardHandler)

// WithMiddleware adds handler middleware. The first given runs outermost;
// a broker's middleware runs outside a subscription's. The delivery loop
// recovers panics from middleware as from handlers.
func WithMiddleware(mw ...Middleware) Option {
	return option(func(c *subscribeConfig) { c.middleware = append(c.middleware, mw...) })
}

// WithObserver adds an Observer, told the outcome of every delivery. A
// broker's observers are called before a subscription's.
func WithObserver(o Observer) Option {
	return option(func(c *subscribeConfig) { c.observers = append(c.observers, o) })
}

// PublishFunc is the signature of Publish, as publish middleware sees it.
type PublishFunc func(ctx context.Context, topic string, msgs []*Message) error

// WithPublishMiddleware adds publish middleware to a broker: each wraps the
// next, the first given outermost, and the innermost is the broker's own
// Publish, which validates the messages and sends them. Middleware runs
// before validation, so it may see nil messages; it must not keep msgs.
// otelpubsub uses it to start send spans and inject the trace context.
func WithPublishMiddleware(mw ...func(next PublishFunc) PublishFunc) BrokerOption {
	return brokerOnly(func(c *brokerConfig) { c.publishMiddleware = append(c.publishMiddleware, mw...) })
}

// WithOptions returns one BrokerOption that applies opts in order, for
// packages that configure a broker in several ways at once (as
// otelpubsub.Instrument adds an observer and publish middleware).
func WithOptions(opts ...BrokerOption) BrokerOption {
	return brokerOnly(func(c *brokerConfig) {
		for _, o := range opts {
			if o != nil {
				o.applyBroker(c)
			}
		}
	})
}
