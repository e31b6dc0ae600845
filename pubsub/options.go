package pubsub

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the subscribe options.
const (
	DefaultConcurrency    = 10
	DefaultMaxAttempts    = 5
	DefaultBackoffInitial = 100 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultDrainTimeout   = 30 * time.Second
	// DeadLetterSuffix is appended to a topic's name to make its default
	// dead-letter topic.
	DeadLetterSuffix = ".dlq"
)

// SubscribeOption configures a Subscription. Options are applied in order; an
// out-of-range value makes Subscribe return ErrInvalidOption.
type SubscribeOption func(*SubscribeConfig)

// WithConcurrency sets how many handlers of the subscription run at once.
// Default DefaultConcurrency (10); n must be at least 1. With n = 1 a
// subscription handles its messages one at a time, in delivery order.
func WithConcurrency(n int) SubscribeOption {
	return func(c *SubscribeConfig) { c.Concurrency = n }
}

// WithMaxAttempts sets how many times a message is delivered to the group
// before it is dead-lettered. Default DefaultMaxAttempts (5); n must be at
// least 1 (1: no retries).
func WithMaxAttempts(n int) SubscribeOption {
	return func(c *SubscribeConfig) { c.MaxAttempts = n }
}

// WithBackoff sets the redelivery delay after a failure: initial after the
// first attempt, doubling each attempt up to max, with "equal jitter" (each
// delay is drawn uniformly from [d/2, d]). Defaults 100ms and 30s; initial
// must be positive and max at least initial.
func WithBackoff(initial, max time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) { c.BackoffInitial, c.BackoffMax = initial, max }
}

// WithDeadLetter sets the topic that messages go to when they exhaust their
// attempts or fail with Permanent. Default: the topic's name followed by
// DeadLetterSuffix (".dlq"). It must be a valid topic name, so a topic name
// longer than MaxNameLength-4 bytes needs it.
func WithDeadLetter(topic string) SubscribeOption {
	return func(c *SubscribeConfig) { c.DeadLetterTopic = topic }
}

// WithDrainTimeout bounds how long Subscription.Close (and a cancelled
// Subscribe context) waits for in-flight handlers. Default
// DefaultDrainTimeout (30s); it must be positive.
func WithDrainTimeout(d time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) { c.DrainTimeout = d }
}

// WithLogger sets the logger for the subscription's events: handler failures
// (Debug), dead letters (Warn) and failures to settle a message with the
// broker (Error), with topic, group and message id attributes. Default
// slog.Default(); nil discards.
func WithLogger(l *slog.Logger) SubscribeOption {
	if l == nil {
		l = discardLogger
	}
	return func(c *SubscribeConfig) { c.Logger = l }
}

var discardLogger = slog.New(slog.DiscardHandler)

// SubscribeConfig is a subscription's resolved configuration. Users set it
// through SubscribeOptions; transports read it (NewSubscribeConfig) to set up
// broker-side policy such as prefetch and retry queues.
type SubscribeConfig struct {
	Topic           string
	Group           string
	Concurrency     int
	MaxAttempts     int
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	DeadLetterTopic string
	DrainTimeout    time.Duration
	Logger          *slog.Logger
}

// NewSubscribeConfig validates topic and group, applies opts over the
// defaults, and validates the result, joining every problem found. It does
// no I/O.
func NewSubscribeConfig(topic, group string, opts ...SubscribeOption) (SubscribeConfig, error) {
	c := SubscribeConfig{
		Topic:          topic,
		Group:          group,
		Concurrency:    DefaultConcurrency,
		MaxAttempts:    DefaultMaxAttempts,
		BackoffInitial: DefaultBackoffInitial,
		BackoffMax:     DefaultBackoffMax,
		DrainTimeout:   DefaultDrainTimeout,
		Logger:         slog.Default(),
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = topic + DeadLetterSuffix
	}
	return c, c.validate()
}

func (c SubscribeConfig) validate() error {
	errs := []error{ValidateTopic(c.Topic), ValidateGroup(c.Group)}
	if errs[0] == nil {
		if err := ValidateTopic(c.DeadLetterTopic); err != nil {
			errs = append(errs, fmt.Errorf("dead-letter topic (see WithDeadLetter): %w", err))
		}
	}
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
	}
	if c.Concurrency < 1 {
		bad("concurrency %d, want at least 1", c.Concurrency)
	}
	if c.MaxAttempts < 1 {
		bad("max attempts %d, want at least 1", c.MaxAttempts)
	}
	if c.BackoffInitial <= 0 || c.BackoffMax < c.BackoffInitial {
		bad("backoff %v..%v, want 0 < initial <= max", c.BackoffInitial, c.BackoffMax)
	}
	if c.DrainTimeout <= 0 {
		bad("drain timeout %v, want > 0", c.DrainTimeout)
	}
	return errors.Join(errs...)
}
