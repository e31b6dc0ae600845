package pubsub

import (
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubscribeConfigDefaults(t *testing.T) {
	b, err := newBrokerConfig(nil)
	require.NoError(t, err)
	c, err := b.sub.forSubscription("orders", "billing", nil)
	require.NoError(t, err)
	assert.Equal(t, "orders", c.topic)
	assert.Equal(t, "billing", c.group)
	assert.Equal(t, 10, c.concurrency)
	assert.Equal(t, 5, c.maxAttempts)
	assert.Equal(t, 100*time.Millisecond, c.backoffInitial)
	assert.Equal(t, 30*time.Second, c.backoffMax)
	assert.Equal(t, "", c.deadLetterTopic, "the group's own dead letters")
	assert.Equal(t, 30*time.Second, c.drainTimeout)
	assert.Same(t, slog.Default(), c.logger)
}

func TestSubscribeConfigOptions(t *testing.T) {
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := newBrokerConfig([]BrokerOption{WithConcurrency(2), WithLogger(l), WithMiddleware(func(h Handler) Handler { return h })})
	require.NoError(t, err)
	c, err := b.sub.forSubscription("orders", "billing", []SubscribeOption{
		WithConcurrency(3), WithMaxAttempts(7), WithBackoff(time.Second, time.Minute),
		WithDeadLetter("graveyard"), WithDrainTimeout(time.Second), nil, WithMiddleware(func(h Handler) Handler { return h })})
	require.NoError(t, err)
	assert.Equal(t, 3, c.concurrency)
	assert.Equal(t, 7, c.maxAttempts)
	assert.Equal(t, time.Second, c.backoffInitial)
	assert.Equal(t, time.Minute, c.backoffMax)
	assert.Equal(t, "graveyard", c.deadLetterTopic)
	assert.Equal(t, time.Second, c.drainTimeout)
	assert.Same(t, l, c.logger, "the broker's logger")
	assert.Len(t, c.middleware, 2, "broker's and subscription's")
	assert.Len(t, b.sub.middleware, 1, "the broker's defaults are not changed")
}

func TestSubscribeConfigJoinsEveryProblem(t *testing.T) {
	b, err := newBrokerConfig(nil)
	require.NoError(t, err)
	_, err = b.sub.forSubscription("bad topic", "", []SubscribeOption{WithConcurrency(0), WithMaxAttempts(-1),
		WithBackoff(time.Second, time.Millisecond), WithDrainTimeout(0), WithDeadLetter("bad dlq")})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidTopic)
	assert.ErrorIs(t, err, ErrInvalidGroup)
	assert.ErrorIs(t, err, ErrInvalidOption)
	for _, part := range []string{"concurrency 0", "max attempts -1", "backoff 1s..1ms", "drain timeout 0s", "dead-letter topic (see WithDeadLetter)"} {
		assert.Contains(t, err.Error(), part)
	}
}

func TestBackoffBoundsAndCap(t *testing.T) {
	c := defaultSubscribeConfig()
	c.backoffInitial, c.backoffMax = 100*time.Millisecond, time.Second
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, n := range nominal {
		d := n * time.Millisecond
		for range 200 {
			got := c.backoff(i + 1)
			require.GreaterOrEqual(t, got, d/2, "attempt %d", i+1)
			require.LessOrEqual(t, got, d, "attempt %d", i+1)
		}
	}
	assert.LessOrEqual(t, c.backoff(1000), time.Second, "no overflow for large attempts")
}

func TestBackoffDoesNotOverflow(t *testing.T) {
	c := defaultSubscribeConfig()
	c.backoffInitial, c.backoffMax = time.Second, time.Duration(math.MaxInt64)
	for attempt := 1; attempt <= 100; attempt++ {
		require.Positive(t, c.backoff(attempt), "attempt %d", attempt)
	}
}

func TestOutcomeNames(t *testing.T) {
	for o, want := range map[Outcome]string{OutcomeAcked: "acked", OutcomeRetried: "retried", OutcomeDeadLettered: "dead_lettered",
		OutcomeReleased: "released", OutcomeParked: "parked", OutcomeSettleFailed: "settle_failed", Outcome(0): "unknown", Outcome(99): "unknown"} {
		assert.Equal(t, want, o.String())
	}
}
