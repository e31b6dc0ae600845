package pubsub

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// subscribeConfig is a subscription's resolved configuration, or a broker's
// defaults for its subscriptions (topic and group empty).
type subscribeConfig struct {
	topic, group    string
	concurrency     int
	maxAttempts     int
	backoffInitial  time.Duration
	backoffMax      time.Duration
	deadLetterTopic string // "" : the group's own dead letters
	drainTimeout    time.Duration
	logger          *slog.Logger
	middleware      []Middleware
	observers       []Observer
}

// brokerConfig is a Client's resolved configuration.
type brokerConfig struct {
	sub               subscribeConfig
	publishMiddleware []func(PublishFunc) PublishFunc
}

func defaultSubscribeConfig() subscribeConfig {
	return subscribeConfig{
		concurrency:    DefaultConcurrency,
		maxAttempts:    DefaultMaxAttempts,
		backoffInitial: DefaultBackoffInitial,
		backoffMax:     DefaultBackoffMax,
		drainTimeout:   DefaultDrainTimeout,
		logger:         slog.Default(),
	}
}

// newBrokerConfig applies opts over the defaults and validates the result,
// joining every problem found.
func newBrokerConfig(opts []BrokerOption) (brokerConfig, error) {
	c := brokerConfig{sub: defaultSubscribeConfig()}
	for _, o := range opts {
		if o != nil {
			o.applyBroker(&c)
		}
	}
	return c, c.sub.validateOptions()
}

// forSubscription returns the configuration of a subscription to group of
// topic: the broker's defaults with opts applied, validated with every
// problem joined. It does no I/O.
func (d subscribeConfig) forSubscription(topic, group string, opts []SubscribeOption) (subscribeConfig, error) {
	c := d
	c.topic, c.group = topic, group
	c.middleware = slices.Clip(c.middleware) // appends must not reach the broker's
	c.observers = slices.Clip(c.observers)
	for _, o := range opts {
		if o != nil {
			o.applySubscribe(&c)
		}
	}
	errs := []error{ValidateTopic(topic), ValidateGroup(group)}
	if c.deadLetterTopic != "" {
		if err := ValidateTopic(c.deadLetterTopic); err != nil {
			errs = append(errs, fmt.Errorf("dead-letter topic (see WithDeadLetter): %w", err))
		}
	}
	errs = append(errs, c.validateOptions())
	return c, errors.Join(errs...)
}

func (c subscribeConfig) validateOptions() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
	}
	if c.concurrency < 1 {
		bad("concurrency %d, want at least 1", c.concurrency)
	}
	if c.maxAttempts < 1 {
		bad("max attempts %d, want at least 1", c.maxAttempts)
	}
	if c.backoffInitial <= 0 || c.backoffMax < c.backoffInitial {
		bad("backoff %v..%v, want 0 < initial <= max", c.backoffInitial, c.backoffMax)
	}
	if c.drainTimeout <= 0 {
		bad("drain timeout %v, want > 0", c.drainTimeout)
	}
	for i, m := range c.middleware {
		if m == nil {
			bad("middleware %d is nil", i+1)
		}
	}
	return errors.Join(errs...)
}

// backoff returns the delay before redelivering a message whose attempt
// number attempt (1-based) failed: backoffInitial doubled for each attempt
// after the first, capped at backoffMax, with equal jitter (uniform in
// [d/2, d]).
func (c subscribeConfig) backoff(attempt int) time.Duration {
	d := c.backoffInitial
	for i := 1; i < attempt && d < c.backoffMax; i++ {
		if d > c.backoffMax/2 {
			d = c.backoffMax // doubling would pass the max (or overflow)
			break
		}
		d *= 2
	}
	d = min(d, c.backoffMax)
	return d/2 + jitter(d/2)
}
