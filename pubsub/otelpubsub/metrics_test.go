package otelpubsub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// Attribute keys of the points of each kind of instrument, as
// metricsData.keys lists them.
const (
	keysBase     = "messaging.consumer.group.name,messaging.destination.name,messaging.system"
	keysConsumed = "messaging.consumer.group.name,messaging.destination.name,messaging.operation.name,messaging.system"
	keysDuration = "messaging.consumer.group.name,messaging.destination.name,messaging.operation.name,messaging.system,switchyard.handler.outcome"
	keysSent     = "messaging.destination.name,messaging.operation.name,messaging.system"
)

var errorString = semconv.ErrorTypeKey.String("*errors.errorString")

// TestHandledOutcomes: acked at once, retried then acked, Permanent, and
// failing until dead-lettered after WithMaxAttempts: each outcome counted
// once, as the loop reported it, and one duration per handler run equal to
// the loop's.
func TestHandledOutcomes(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	done := newSettlements()
	_, err := b.Subscribe(ctx, "orders", "billing", func(_ context.Context, m *pubsub.Message) error {
		switch {
		case m.ID == "flaky" && m.Attempt == 1:
			return errors.New("timeout")
		case m.ID == "bad":
			return pubsub.Permanent(errors.New("malformed"))
		case m.ID == "doomed":
			return errors.New("always")
		}
		return nil
	}, pubsub.WithMaxAttempts(3), fast, done.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders",
		&pubsub.Message{ID: "ok"}, &pubsub.Message{ID: "flaky"}, &pubsub.Message{ID: "bad"}, &pubsub.Message{ID: "doomed"}))

	got := map[string][]string{}
	took := map[string]float64{} // handler seconds by outcome, as the loop measured them
	for range 7 {
		s := done.next(t)
		got[s.Message.ID] = append(got[s.Message.ID], s.Outcome.String())
		took[s.Outcome.String()] += s.Duration.Seconds()
	}
	assert.Equal(t, map[string][]string{
		"ok":     {"acked"},
		"flaky":  {"retried", "acked"},
		"bad":    {"dead_lettered"},
		"doomed": {"retried", "retried", "dead_lettered"},
	}, got)
	done.quiet(t)

	data := tel.collect(t)
	assert.Equal(t, totalsOf(map[string]int64{
		otelpubsub.MetricSent:            4,
		otelpubsub.MetricConsumed:        7,
		otelpubsub.MetricAcked:           2,
		otelpubsub.MetricRetried:         3,
		otelpubsub.MetricDeadLettered:    2,
		otelpubsub.MetricProcessDuration: 7,
	}), data.totals())

	in := where("orders", "billing")
	assert.EqualValues(t, 7, data.sum(otelpubsub.MetricConsumed, with(in, semconv.MessagingOperationName("process"))...))
	assert.EqualValues(t, 2, data.sum(otelpubsub.MetricAcked, in...))
	assert.EqualValues(t, 3, data.sum(otelpubsub.MetricRetried, in...))
	assert.EqualValues(t, 2, data.sum(otelpubsub.MetricDeadLettered, in...))
	for outcome, n := range map[string]uint64{"acked": 2, "retried": 3, "dead_lettered": 2} {
		w := with(in, semconv.MessagingOperationName("process"), otelpubsub.OutcomeKey.String(outcome))
		assert.Equal(t, n, data.histCount(otelpubsub.MetricProcessDuration, w...), outcome)
		assert.InDelta(t, took[outcome], data.histSum(otelpubsub.MetricProcessDuration, w...), 1e-9, outcome)
	}
	dur := func(outcome string, errType string) uint64 {
		return data.histCount(otelpubsub.MetricProcessDuration, otelpubsub.OutcomeKey.String(outcome), semconv.ErrorTypeKey.String(errType))
	}
	assert.EqualValues(t, 3, dur("retried", "*errors.errorString"))
	assert.EqualValues(t, 1, dur("dead_lettered", "*errors.errorString"))
	assert.EqualValues(t, 1, dur("dead_lettered", "*pubsub.permanentError"))

	for name, want := range map[string][]string{
		otelpubsub.MetricSent:            {keysSent},
		otelpubsub.MetricConsumed:        {keysConsumed},
		otelpubsub.MetricAcked:           {keysBase},
		otelpubsub.MetricRetried:         {keysBase},
		otelpubsub.MetricDeadLettered:    {keysBase},
		otelpubsub.MetricInFlight:        {keysBase},
		otelpubsub.MetricProcessDuration: {"error.type," + keysDuration, keysDuration},
	} {
		assert.Equal(t, want, data.keys(name), name)
	}

	dls, err := b.ListDeadLetters(ctx, "orders", "billing", 0)
	require.NoError(t, err)
	require.Len(t, dls, 2)
}

// TestInFlight: handlers running are in flight; none once they returned.
func TestInFlight(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	done := newSettlements()
	entered, release := make(chan struct{}), make(chan struct{})
	_, err := b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error {
		entered <- struct{}{}
		<-release
		return nil
	}, done.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"}))
	<-entered
	<-entered
	data := tel.collect(t)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 2, otelpubsub.MetricInFlight: 2}), data.totals())
	assert.EqualValues(t, 2, data.sum(otelpubsub.MetricInFlight, where("orders", "g")...))
	assert.Empty(t, tel.ended(trace.SpanKindConsumer), "process spans end with the outcome")

	close(release)
	done.take(t, 2)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 2,
		otelpubsub.MetricAcked: 2, otelpubsub.MetricProcessDuration: 2}), tel.collect(t).totals())
}

// TestReleased: a handler that returns an error wrapping pubsub.ErrClosed
// while its subscription stops has its message released, untouched: counted
// as released (not retried), and delivered again with the same Attempt.
func TestReleased(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	done := newSettlements()
	subs := make(chan *pubsub.Subscription, 1)
	entered := make(chan struct{}, 1)
	sub, err := b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error {
		s := <-subs
		entered <- struct{}{}
		<-s.Stopping()
		return fmt.Errorf("downstream stops too: %w", pubsub.ErrClosed)
	}, pubsub.WithConcurrency(1), done.observer())
	require.NoError(t, err)
	subs <- sub
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "m", Payload: []byte("abc")}))
	<-entered
	require.NoError(t, sub.Close())
	s := done.next(t)
	assert.Equal(t, "released", s.Outcome.String())
	assert.Equal(t, 1, s.Message.Attempt)

	data := tel.collect(t)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 1, otelpubsub.MetricConsumed: 1,
		otelpubsub.MetricReleased: 1, otelpubsub.MetricProcessDuration: 1}), data.totals())
	assert.EqualValues(t, 1, data.sum(otelpubsub.MetricReleased, where("orders", "g")...))
	assert.EqualValues(t, 1, data.histCount(otelpubsub.MetricProcessDuration, otelpubsub.OutcomeKey.String("released")))
	assert.Equal(t, []string{keysDuration}, data.keys(otelpubsub.MetricProcessDuration), "no error.type: not a failure")

	_, err = b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error { return nil }, done.observer())
	require.NoError(t, err)
	s = done.next(t)
	assert.Equal(t, "acked", s.Outcome.String())
	assert.Equal(t, 1, s.Message.Attempt, "a released message keeps its Attempt")
	done.quiet(t)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 1, otelpubsub.MetricConsumed: 2,
		otelpubsub.MetricReleased: 1, otelpubsub.MetricAcked: 1, otelpubsub.MetricProcessDuration: 2}), tel.collect(t).totals())

	send := tel.ended(trace.SpanKindProducer)
	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, send, 1)
	require.Len(t, procs, 2)
	assert.Equal(t, processAttrs("orders", "g", "m", 3, 1, "released"), attrs(procs[0].Attributes()...))
	assert.Equal(t, codes.Unset, procs[0].Status().Code)
	assert.Equal(t, processAttrs("orders", "g", "m", 3, 1, "acked"), attrs(procs[1].Attributes()...))
	for _, p := range procs {
		assert.Equal(t, send[0].SpanContext().SpanID(), p.Parent().SpanID())
	}
}

// TestParked: with room for one dead letter, the second is parked: counted
// as parked (not final: no span end, no duration, not in flight), then as
// dead-lettered once a purge makes room, with one duration in all.
func TestParked(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{DeadLetterCapacity: 1})
	done := newSettlements()
	_, err := b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New("malformed"))
	}, pubsub.WithConcurrency(1), fast, done.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "first"}, &pubsub.Message{ID: "second"}))

	s := done.next(t)
	assert.Equal(t, []string{"first", "dead_lettered"}, []string{s.Message.ID, s.Outcome.String()})
	s = done.next(t)
	assert.Equal(t, []string{"second", "parked"}, []string{s.Message.ID, s.Outcome.String()})
	parkErr := s.Err
	require.Error(t, parkErr)
	done.quiet(t) // the loop keeps trying to store it, and reports nothing more

	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 2,
		otelpubsub.MetricDeadLettered: 1, otelpubsub.MetricParked: 1, otelpubsub.MetricProcessDuration: 1}),
		tel.collect(t).totals(), "parked: its handler returned, so it is not in flight")
	require.Len(t, tel.ended(trace.SpanKindConsumer), 1, "the parked delivery's span is still open")

	n, err := b.PurgeDeadLetters(ctx, "orders", "g", "first")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	s = done.next(t)
	assert.Equal(t, []string{"second", "dead_lettered"}, []string{s.Message.ID, s.Outcome.String()})
	done.quiet(t)

	data := tel.collect(t)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 2,
		otelpubsub.MetricDeadLettered: 2, otelpubsub.MetricParked: 1, otelpubsub.MetricProcessDuration: 2}), data.totals())
	assert.EqualValues(t, 1, data.sum(otelpubsub.MetricParked, where("orders", "g")...))
	assert.EqualValues(t, 2, data.histCount(otelpubsub.MetricProcessDuration,
		otelpubsub.OutcomeKey.String("dead_lettered"), semconv.ErrorTypeKey.String("*pubsub.permanentError")))

	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, procs, 2)
	second := procs[1]
	assert.Equal(t, processAttrs("orders", "g", "second", 0, 1, "dead_lettered",
		semconv.ErrorTypeKey.String("*pubsub.permanentError")), attrs(second.Attributes()...))
	assert.Equal(t, codes.Error, second.Status().Code)
	assert.Equal(t, "malformed", second.Status().Description)
	assert.Equal(t, []string{parkErr.Error(), "malformed"}, exceptions(second), "the parking, then the cause")
	assert.Equal(t, "parked", eventAttr(second, otelpubsub.OutcomeKey))

	dls, err := b.ListDeadLetters(ctx, "orders", "g", 0)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	assert.Equal(t, "second", dls[0].ID)

	// Replayed, the dead letter keeps its trace context: its new process
	// span is again a child of its send span.
	n, err = b.ReplayDeadLetters(ctx, "orders", "g", "second")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	s = done.next(t)
	assert.Equal(t, []any{"second", "dead_lettered", 1}, []any{s.Message.ID, s.Outcome.String(), s.Message.Attempt})
	done.quiet(t)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 3,
		otelpubsub.MetricDeadLettered: 3, otelpubsub.MetricParked: 1, otelpubsub.MetricProcessDuration: 3}), tel.collect(t).totals())
	procs = tel.ended(trace.SpanKindConsumer)
	require.Len(t, procs, 3)
	assert.Equal(t, second.Parent(), procs[2].Parent())
	assert.Equal(t, tel.ended(trace.SpanKindProducer)[1].SpanContext().SpanID(), procs[2].Parent().SpanID())
}

// TestCutOffThenDeadLetteredOnArrival: a handler still running at
// Shutdown's deadline has its message handed back with the next Attempt
// (retried, its span ended then); with WithMaxAttempts(1) the next member
// dead-letters it on arrival without running the handler. Its dead letter
// is parked first (the group's one place is taken by "filler"), then stored
// after a purge: one span of its own, made at the final outcome, the parked
// and dead-lettered counters, but neither consumed nor a duration.
func TestCutOffThenDeadLetteredOnArrival(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{DeadLetterCapacity: 1})
	done := newSettlements()
	entered := make(chan struct{}, 1)
	sub, err := b.Subscribe(ctx, "orders", "g", func(ctx context.Context, m *pubsub.Message) error {
		if m.ID == "filler" {
			return pubsub.Permanent(errors.New("filler"))
		}
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, pubsub.WithMaxAttempts(1), fast, done.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "filler"}))
	assert.Equal(t, "dead_lettered", done.next(t).Outcome.String())
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "slow"}))
	<-entered
	expired, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, sub.Shutdown(expired), context.Canceled)
	s := done.next(t)
	assert.Equal(t, []string{"slow", "retried"}, []string{s.Message.ID, s.Outcome.String()})
	assert.NoError(t, s.Cause, "handed back: no handler failure")
	<-sub.Done()
	done.quiet(t)

	data := tel.collect(t)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 2,
		otelpubsub.MetricDeadLettered: 1, otelpubsub.MetricRetried: 1, otelpubsub.MetricProcessDuration: 2}), data.totals())
	retried := []attribute.KeyValue{otelpubsub.OutcomeKey.String("retried")}
	assert.EqualValues(t, 1, data.histCount(otelpubsub.MetricProcessDuration, retried...))
	assert.Greater(t, data.histSum(otelpubsub.MetricProcessDuration, retried...), 0.0, "the time it ran until the cut")
	assert.Equal(t, []string{"error.type," + keysDuration, keysDuration}, data.keys(otelpubsub.MetricProcessDuration),
		"no error.type on the cut-off run")

	ran := make(chan struct{}, 1)
	_, err = b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error {
		ran <- struct{}{}
		return nil
	}, pubsub.WithMaxAttempts(1), fast, done.observer())
	require.NoError(t, err)
	s = done.next(t)
	assert.Equal(t, []any{"slow", "parked", 2}, []any{s.Message.ID, s.Outcome.String(), s.Message.Attempt})
	done.quiet(t)
	assert.Len(t, tel.ended(trace.SpanKindConsumer), 2, "no span for it yet")
	n, err := b.PurgeDeadLetters(ctx, "orders", "g", "filler")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	s = done.next(t)
	assert.Equal(t, []any{"slow", "dead_lettered", 2}, []any{s.Message.ID, s.Outcome.String(), s.Message.Attempt})
	require.Error(t, s.Cause)
	done.quiet(t)
	assert.Empty(t, ran, "the handler did not run")

	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 2,
		otelpubsub.MetricRetried: 1, otelpubsub.MetricParked: 1, otelpubsub.MetricDeadLettered: 2,
		otelpubsub.MetricProcessDuration: 2}), tel.collect(t).totals())

	sends := tel.ended(trace.SpanKindProducer)
	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, sends, 2)
	require.Len(t, procs, 3)
	assert.Equal(t, processAttrs("orders", "g", "slow", 0, 1, "retried"), attrs(procs[1].Attributes()...))
	assert.Equal(t, codes.Unset, procs[1].Status().Code)
	arrival := procs[2]
	assert.Equal(t, processAttrs("orders", "g", "slow", 0, 2, "dead_lettered", errorString), attrs(arrival.Attributes()...))
	assert.Equal(t, codes.Error, arrival.Status().Code)
	assert.Equal(t, s.Cause.Error(), arrival.Status().Description)
	assert.Equal(t, []string{s.Cause.Error()}, exceptions(arrival))
	for _, p := range procs[1:] {
		assert.Equal(t, sends[1].SpanContext().SpanID(), p.Parent().SpanID())
		assert.True(t, p.Parent().IsRemote())
	}
}

// TestReleasedAfterDeadline: a delivery taken just before its subscription
// stopped (held here by a subscription observer's OnReceive), whose handler
// would start only after Shutdown's deadline: the loop does not run it and
// reports it released (the memory receiver handed it back to the group);
// its process span ends with that outcome and the group delivers the
// message again, untouched. (A settle failure, which the memory broker
// cannot produce, is covered by package pubsub's tests.)
func TestReleasedAfterDeadline(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	done := newSettlements()
	entered, unblock := make(chan struct{}, 1), make(chan struct{})
	ran := make(chan struct{}, 1)
	hold := pubsub.WithObserver(pubsub.Observer{OnReceive: func(ctx context.Context, _ pubsub.Delivery) context.Context {
		entered <- struct{}{}
		<-unblock
		return ctx
	}})
	sub, err := b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error { ran <- struct{}{}; return nil },
		pubsub.WithConcurrency(1), hold, done.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "m"}))
	<-entered
	assert.EqualValues(t, 1, tel.collect(t).sum(otelpubsub.MetricInFlight), "OnReceive ran: in flight")
	expired, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, sub.Shutdown(expired), context.Canceled)
	close(unblock)
	s := done.next(t)
	require.Equal(t, "released", s.Outcome.String())
	assert.NoError(t, s.Err)
	assert.NoError(t, s.Cause)
	<-sub.Done()
	done.quiet(t)
	select {
	case <-ran:
		t.Fatal("the handler ran after Shutdown's deadline")
	default:
	}

	data := tel.collect(t)
	assert.EqualValues(t, 1, data.sum(otelpubsub.MetricReleased, where("orders", "g")...))
	assert.EqualValues(t, 0, data.sum(otelpubsub.MetricInFlight), "no longer in flight")
	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, procs, 1, "the process span ended")

	_, err = b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error { return nil }, done.observer())
	require.NoError(t, err)
	s = done.next(t)
	assert.Equal(t, []any{"acked", 1}, []any{s.Outcome.String(), s.Message.Attempt}, "delivered again, untouched")
}
