package otelpubsub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
)

// TestMetricsOfScriptedRun publishes three messages to a group with three
// attempts: one acked at once, one failing once then acked (one retry), one
// failing with Permanent (one dead letter), and reads the dead letter
// through the wrapper too.
func TestMetricsOfScriptedRun(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	_, err := b.Subscribe(ctx, "orders", "billing", func(_ context.Context, m *pubsub.Message) error {
		switch {
		case m.ID == "flaky" && m.Attempt == 1:
			return errors.New("timeout")
		case m.ID == "bad":
			return pubsub.Permanent(errors.New("malformed"))
		}
		return nil
	}, pubsub.WithMaxAttempts(3), pubsub.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	dead := make(chan *pubsub.Message, 1)
	_, err = b.Subscribe(ctx, "orders.dlq", "billing", func(_ context.Context, m *pubsub.Message) error {
		dead <- m
		return nil
	})
	require.NoError(t, err)

	require.NoError(t, b.Publish(ctx, "orders",
		&pubsub.Message{ID: "ok"}, &pubsub.Message{ID: "flaky"}, &pubsub.Message{ID: "bad"}))
	select {
	case m := <-dead:
		assert.Equal(t, "bad", m.ID)
	case <-time.After(waitFor):
		require.FailNow(t, "no dead letter")
	}

	system := semconv.MessagingSystemKey.String("memory")
	orders := []attribute.KeyValue{system, semconv.MessagingDestinationName("orders"), semconv.MessagingConsumerGroupName("billing")}
	dlq := []attribute.KeyValue{system, semconv.MessagingDestinationName("orders.dlq"), semconv.MessagingConsumerGroupName("billing")}
	want := map[string]int64{
		"sent orders":           3,
		"consumed orders":       4,
		"acked orders":          2,
		"retried orders":        1,
		"dead_lettered orders":  1,
		"duration count orders": 4,
		"consumed dlq":          1,
		"acked dlq":             1,
		"retried dlq":           0,
		"dead_lettered dlq":     0,
		"in_flight":             0,
	}
	read := func() map[string]int64 {
		data := tel.collect(t)
		return map[string]int64{
			"sent orders":           sum(data, otelpubsub.MetricSent, system, semconv.MessagingDestinationName("orders")),
			"consumed orders":       sum(data, otelpubsub.MetricConsumed, orders...),
			"acked orders":          sum(data, otelpubsub.MetricAcked, orders...),
			"retried orders":        sum(data, otelpubsub.MetricRetried, orders...),
			"dead_lettered orders":  sum(data, otelpubsub.MetricDeadLettered, orders...),
			"duration count orders": int64(count(data, otelpubsub.MetricProcessDuration, orders...)),
			"consumed dlq":          sum(data, otelpubsub.MetricConsumed, dlq...),
			"acked dlq":             sum(data, otelpubsub.MetricAcked, dlq...),
			"retried dlq":           sum(data, otelpubsub.MetricRetried, dlq...),
			"dead_lettered dlq":     sum(data, otelpubsub.MetricDeadLettered, dlq...),
			"in_flight":             sum(data, otelpubsub.MetricInFlight),
		}
	}
	// The dead-letter handler's counts are recorded just after it returns.
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, read()) }, waitFor, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // nothing more comes
	assert.Equal(t, want, read())

	data := tel.collect(t)
	assert.EqualValues(t, 1, count(data, otelpubsub.MetricProcessDuration,
		append(orders, otelpubsub.OutcomeKey.String(otelpubsub.OutcomeRetry))...))
	assert.EqualValues(t, 1, count(data, otelpubsub.MetricProcessDuration,
		append(orders, otelpubsub.OutcomeKey.String(otelpubsub.OutcomeDeadLetter))...))
	assert.EqualValues(t, 0, sum(data, otelpubsub.MetricSent, semconv.MessagingDestinationName("orders.dlq")),
		"dead letters are published by the wrapped broker's delivery loop, not through the wrapper")
	hist, ok := data[otelpubsub.MetricProcessDuration].(metricdata.Histogram[float64])
	require.True(t, ok, "process duration is a float64 histogram")
	for _, p := range hist.DataPoints {
		outcome, _ := p.Attributes.Value(otelpubsub.OutcomeKey)
		assert.Equal(t, outcome.AsString() != otelpubsub.OutcomeAck, p.Attributes.HasValue(semconv.ErrorTypeKey),
			"error.type exactly on failures (%s)", outcome.AsString())
	}
}

func TestInFlightWhileHandlerRuns(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	entered, release := make(chan struct{}), make(chan struct{})
	_, err := b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error {
		entered <- struct{}{}
		<-release
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"}))
	<-entered
	<-entered
	assert.EqualValues(t, 2, sum(tel.collect(t), otelpubsub.MetricInFlight, semconv.MessagingConsumerGroupName("g")))
	close(release)
	require.Eventually(t, func() bool {
		data := tel.collect(t)
		return sum(data, otelpubsub.MetricAcked) == 2 && sum(data, otelpubsub.MetricInFlight) == 0
	}, waitFor, 5*time.Millisecond)
}

func TestPanicIsRecordedAndRepanicked(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	got := make(spanContexts, 2)
	_, err := b.Subscribe(ctx, "orders", "g", got.handler(func(m *pubsub.Message) error {
		if m.Attempt == 1 {
			panic("handler bug")
		}
		return nil
	}), pubsub.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "p"}))
	got.next(t)
	got.next(t) // the delivery loop recovered the re-panic and retried

	procs := tel.ended(t, trace.SpanKindConsumer, 2)
	require.Len(t, procs, 2)
	first := procs[0]
	assert.Equal(t, codes.Error, first.Status().Code)
	assert.Contains(t, first.Status().Description, "handler bug")
	assert.Contains(t, first.Attributes(), otelpubsub.OutcomeKey.String(otelpubsub.OutcomeRetry))
	require.NotEmpty(t, first.Events())
	assert.Equal(t, "exception", first.Events()[0].Name)
	stack, ok := attr(first.Events()[0].Attributes, "exception.stacktrace")
	assert.True(t, ok && stack.AsString() != "", "the panic's stack is recorded")
	assert.Contains(t, procs[1].Attributes(), otelpubsub.OutcomeKey.String(otelpubsub.OutcomeAck))

	require.Eventually(t, func() bool {
		data := tel.collect(t)
		return sum(data, otelpubsub.MetricRetried) == 1 && sum(data, otelpubsub.MetricAcked) == 1 &&
			sum(data, otelpubsub.MetricInFlight) == 0
	}, waitFor, 5*time.Millisecond)
}

func TestLastAttemptFailureIsDeadLetter(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	_, err := b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error {
		return errors.New("always")
	}, pubsub.WithMaxAttempts(2), pubsub.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "x"}))
	require.Eventually(t, func() bool {
		data := tel.collect(t)
		return sum(data, otelpubsub.MetricRetried) == 1 && sum(data, otelpubsub.MetricDeadLettered) == 1
	}, waitFor, 5*time.Millisecond)
}
