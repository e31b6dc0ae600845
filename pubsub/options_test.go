package pubsub_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

func TestSubscribeConfigDefaults(t *testing.T) {
	c, err := pubsub.NewSubscribeConfig("orders", "billing")
	require.NoError(t, err)
	assert.Equal(t, "orders", c.Topic)
	assert.Equal(t, "billing", c.Group)
	assert.Equal(t, 10, c.Concurrency)
	assert.Equal(t, 5, c.MaxAttempts)
	assert.Equal(t, 100*time.Millisecond, c.BackoffInitial)
	assert.Equal(t, 30*time.Second, c.BackoffMax)
	assert.Equal(t, "orders.dlq", c.DeadLetterTopic)
	assert.Equal(t, 30*time.Second, c.DrainTimeout)
	assert.Same(t, slog.Default(), c.Logger)
}

func TestSubscribeConfigOptions(t *testing.T) {
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := pubsub.NewSubscribeConfig("orders", "billing",
		pubsub.WithConcurrency(3), pubsub.WithMaxAttempts(7), pubsub.WithBackoff(time.Second, time.Minute),
		pubsub.WithDeadLetter("graveyard"), pubsub.WithDrainTimeout(time.Second), pubsub.WithLogger(l), nil)
	require.NoError(t, err)
	assert.Equal(t, 3, c.Concurrency)
	assert.Equal(t, 7, c.MaxAttempts)
	assert.Equal(t, time.Second, c.BackoffInitial)
	assert.Equal(t, time.Minute, c.BackoffMax)
	assert.Equal(t, "graveyard", c.DeadLetterTopic)
	assert.Equal(t, time.Second, c.DrainTimeout)
	assert.Same(t, l, c.Logger)
}

func TestSubscribeConfigJoinsEveryProblem(t *testing.T) {
	_, err := pubsub.NewSubscribeConfig("bad topic", "", pubsub.WithConcurrency(0), pubsub.WithMaxAttempts(-1),
		pubsub.WithBackoff(time.Second, time.Millisecond), pubsub.WithDrainTimeout(0))
	require.Error(t, err)
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
	assert.ErrorIs(t, err, pubsub.ErrInvalidGroup)
	assert.ErrorIs(t, err, pubsub.ErrInvalidOption)
	for _, part := range []string{"concurrency 0", "max attempts -1", "backoff 1s..1ms", "drain timeout 0s"} {
		assert.Contains(t, err.Error(), part)
	}
}

func TestSubscribeConfigDeadLetterName(t *testing.T) {
	long := strings.Repeat("t", 197) // 197 + ".dlq" = 201 bytes
	_, err := pubsub.NewSubscribeConfig(long, "g")
	require.ErrorIs(t, err, pubsub.ErrInvalidTopic)
	assert.Contains(t, err.Error(), "dead-letter topic (see WithDeadLetter)")
	_, err = pubsub.NewSubscribeConfig(long, "g", pubsub.WithDeadLetter("short.dlq"))
	assert.NoError(t, err)
}

func TestBackoffBoundsAndCap(t *testing.T) {
	c, err := pubsub.NewSubscribeConfig("t", "g", pubsub.WithBackoff(100*time.Millisecond, time.Second))
	require.NoError(t, err)
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, n := range nominal {
		d := n * time.Millisecond
		for range 200 {
			got := c.Backoff(i + 1)
			require.GreaterOrEqual(t, got, d/2, "attempt %d", i+1)
			require.LessOrEqual(t, got, d, "attempt %d", i+1)
		}
	}
	assert.LessOrEqual(t, c.Backoff(1000), time.Second, "no overflow for large attempts")
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad input")
	p := pubsub.Permanent(base)
	assert.True(t, pubsub.IsPermanent(p))
	assert.ErrorIs(t, p, base)
	assert.Equal(t, "bad input", p.Error())
	assert.True(t, pubsub.IsPermanent(errors.Join(errors.New("ctx"), p)), "wrapped")
	assert.False(t, pubsub.IsPermanent(base))
	assert.NoError(t, pubsub.Permanent(nil))
}
