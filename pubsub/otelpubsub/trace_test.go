package otelpubsub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// TestSpansAcrossPublishAndRedeliveries: one send span, child of the
// caller's; one process span per delivery (an error, a panic, then
// success), each a child of the send span through the metadata, with the
// loop's outcome, the attempt and the failure.
func TestSpansAcrossPublishAndRedeliveries(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	done := newSettlements()
	ran := make(handlerSpans, 3)
	_, err := b.Subscribe(ctx, "orders", "billing", ran.handler(func(m *pubsub.Message) error {
		switch m.Attempt {
		case 1:
			return errors.New("timeout")
		case 2:
			panic("handler bug")
		}
		return nil
	}), fast, done.observer())
	require.NoError(t, err)

	pctx, checkout := tel.tp.Tracer("test").Start(ctx, "checkout")
	require.NoError(t, b.Publish(pctx, "orders", &pubsub.Message{ID: "m-1", Payload: []byte("hello")}))
	checkout.End()
	assert.Equal(t, map[string][]string{"m-1": {"retried", "retried", "acked"}}, done.take(t, 3))
	done.quiet(t)

	sends := tel.ended(trace.SpanKindProducer)
	require.Len(t, sends, 1)
	send := sends[0]
	assert.Equal(t, "send orders", send.Name())
	assert.Equal(t, checkout.SpanContext().TraceID(), send.SpanContext().TraceID())
	assert.Equal(t, checkout.SpanContext().SpanID(), send.Parent().SpanID(), "send span is a child of the caller's span")
	assert.Equal(t, sendAttrs("orders", "m-1", 5), attrs(send.Attributes()...))
	assert.Equal(t, codes.Unset, send.Status().Code)

	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, procs, 3, "one process span per delivery")
	wantAttrs := []map[attribute.Key]string{
		processAttrs("orders", "billing", "m-1", 5, 1, "retried", semconv.ErrorTypeKey.String("*errors.errorString")),
		processAttrs("orders", "billing", "m-1", 5, 2, "retried", semconv.ErrorTypeKey.String("*pubsub.PanicError")),
		processAttrs("orders", "billing", "m-1", 5, 3, "acked"),
	}
	wantStatus := []string{"timeout", "pubsub: handler panicked: handler bug", ""}
	for i, p := range procs {
		assert.Equal(t, "process orders", p.Name())
		assert.Equal(t, send.SpanContext().TraceID(), p.SpanContext().TraceID(), "delivery %d: same trace", i+1)
		assert.Equal(t, send.SpanContext().SpanID(), p.Parent().SpanID(), "delivery %d: child of the send span", i+1)
		assert.True(t, p.Parent().IsRemote(), "delivery %d: the parent comes from the metadata", i+1)
		assert.Equal(t, p.SpanContext(), ran.next(t), "delivery %d: the handler runs under the process span", i+1)
		assert.Equal(t, wantAttrs[i], attrs(p.Attributes()...), "delivery %d", i+1)
		if wantStatus[i] == "" {
			assert.Equal(t, codes.Unset, p.Status().Code, "delivery %d", i+1)
			assert.Empty(t, exceptions(p), "delivery %d", i+1)
		} else {
			assert.Equal(t, codes.Error, p.Status().Code, "delivery %d", i+1)
			assert.Equal(t, wantStatus[i], p.Status().Description, "delivery %d", i+1)
			assert.Equal(t, []string{wantStatus[i]}, exceptions(p), "delivery %d", i+1)
		}
	}
	stack := eventAttr(procs[1], "exception.stacktrace")
	assert.Contains(t, stack, "TestSpansAcrossPublishAndRedeliveries", "the panic's own stack")
	assert.NotContains(t, stack, "endSpan", "not the observer's stack")
	assert.Empty(t, eventAttr(procs[0], "exception.stacktrace"), "no stack for an error")
}

// TestProcessSpanWithoutTraceContextIsRoot: a message published without
// instrumentation has no trace metadata; its process span is a root, never
// a child of a span in Subscribe's context.
func TestProcessSpanWithoutTraceContextIsRoot(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	hub := memory.Config{Name: "otelpubsub-" + t.Name()}
	b := tel.broker(t, hub)
	plain, err := memory.New(hub, pubsub.WithLogger(nil))
	require.NoError(t, err)
	defer func() { _ = plain.Close() }()

	sctx, setup := tel.tp.Tracer("test").Start(ctx, "setup")
	defer setup.End()
	done := newSettlements()
	ran := make(handlerSpans, 1)
	_, err = b.Subscribe(sctx, "orders", "g", ran.handler(nil), done.observer())
	require.NoError(t, err)
	require.NoError(t, plain.Publish(ctx, "orders", &pubsub.Message{ID: "plain", Metadata: map[string]string{"k": "v"}}))
	assert.Equal(t, "acked", done.next(t).Outcome.String())

	assert.Empty(t, tel.ended(trace.SpanKindProducer), "the plain broker makes no send span")
	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, procs, 1)
	p := procs[0]
	assert.False(t, p.Parent().IsValid(), "no trace context in the metadata: a root span")
	assert.NotEqual(t, setup.SpanContext().TraceID(), p.SpanContext().TraceID())
	assert.Equal(t, p.SpanContext(), ran.next(t))
	assert.Equal(t, processAttrs("orders", "g", "plain", 0, 1, "acked"), attrs(p.Attributes()...))
}

// TestPublishLeavesCallerMessageAlone: Publish sets an empty ID, as it
// always does, but the caller's Metadata map is not modified; the delivered
// copy carries the send span's W3C trace context (no global propagator is
// set) next to the caller's metadata.
func TestPublishLeavesCallerMessageAlone(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	delivered := make(chan *pubsub.Message, 2)
	done := newSettlements()
	_, err := b.Subscribe(ctx, "orders", "g", func(_ context.Context, m *pubsub.Message) error {
		delivered <- m
		return nil
	}, pubsub.WithConcurrency(1), done.observer())
	require.NoError(t, err)

	md := map[string]string{"a": "1"}
	withMD := &pubsub.Message{Metadata: md, Payload: []byte("x")}
	noMD := &pubsub.Message{ID: "given"}
	require.NoError(t, b.Publish(ctx, "orders", withMD, noMD))
	require.Len(t, withMD.ID, 32, "Publish sets the empty ID")
	assert.Equal(t, map[string]string{"a": "1"}, md, "the caller's map is not modified")
	assert.Equal(t, map[string]string{"a": "1"}, withMD.Metadata)
	assert.Nil(t, noMD.Metadata, "a nil map stays nil")
	assert.Equal(t, "given", noMD.ID)
	done.take(t, 2)

	sends := tel.ended(trace.SpanKindProducer)
	require.Len(t, sends, 2)
	traceparent := func(s trace.SpanContext) string {
		return "00-" + s.TraceID().String() + "-" + s.SpanID().String() + "-01"
	}
	m1, m2 := <-delivered, <-delivered
	assert.Equal(t, withMD.ID, m1.ID)
	assert.Equal(t, map[string]string{"a": "1", "traceparent": traceparent(sends[0].SpanContext())}, m1.Metadata)
	assert.Equal(t, "given", m2.ID)
	assert.Equal(t, map[string]string{"traceparent": traceparent(sends[1].SpanContext())}, m2.Metadata)
	for _, s := range sends {
		assert.False(t, s.Parent().IsValid(), "no caller span: a root")
	}
	assert.NotEqual(t, sends[0].SpanContext().TraceID(), sends[1].SpanContext().TraceID(), "one trace per message")
	assert.Equal(t, sendAttrs("orders", withMD.ID, 1), attrs(sends[0].Attributes()...))
	assert.Equal(t, sendAttrs("orders", "given", 0), attrs(sends[1].Attributes()...))
}

// TestFailedPublishMarksSpans: a Publish that fails marks its send spans as
// errors and counts its messages as sent with error.type; a Publish to an
// invalid topic name passes through without telemetry.
func TestFailedPublishMarksSpans(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{MaxMessageBytes: 10})

	require.ErrorIs(t, b.Publish(ctx, "no spaces allowed", &pubsub.Message{}), pubsub.ErrInvalidTopic)
	assert.Empty(t, tel.spans.Ended(), "invalid topic: no span")

	big := &pubsub.Message{ID: "big", Payload: []byte(strings.Repeat("x", 20))}
	err := b.Publish(ctx, "orders", &pubsub.Message{ID: "small"}, big)
	require.ErrorIs(t, err, pubsub.ErrMessageTooLarge)
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "late"}), pubsub.ErrClosed)

	sends := tel.ended(trace.SpanKindProducer)
	require.Len(t, sends, 3)
	for i, want := range []struct {
		id   string
		size int
		err  error
	}{{"small", 0, err}, {"big", 20, err}, {"late", 0, pubsub.ErrClosed}} {
		s := sends[i]
		assert.Equal(t, sendAttrs("orders", want.id, want.size, semconv.ErrorTypeKey.String("*errors.errorString")), attrs(s.Attributes()...), want.id)
		assert.Equal(t, codes.Error, s.Status().Code, want.id)
		assert.Equal(t, want.err.Error(), s.Status().Description, want.id)
		assert.Equal(t, []string{want.err.Error()}, exceptions(s), want.id)
	}

	data := tel.collect(t)
	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 3}), data.totals())
	assert.EqualValues(t, 3, data.sum(otelpubsub.MetricSent, system, semconv.MessagingDestinationName("orders"),
		semconv.MessagingOperationName("send"), semconv.ErrorTypeKey.String("*errors.errorString")))
	assert.Equal(t, []string{"error.type,messaging.destination.name,messaging.operation.name,messaging.system"},
		data.keys(otelpubsub.MetricSent), "none without error.type: nothing was published")
}

// TestDeadLetterTopicContinuesTheTrace: a dead letter that the loop
// publishes to pubsub.WithDeadLetter's topic gets a send span that is a
// child of the process span that gave up on it, and its consumer's process
// span follows on, all in the original trace.
func TestDeadLetterTopicContinuesTheTrace(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	done := newSettlements()
	dlqDone := newSettlements()
	_, err := b.Subscribe(ctx, "orders", "billing", func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New("malformed"))
	}, pubsub.WithDeadLetter("orders.dlq"), done.observer())
	require.NoError(t, err)
	_, err = b.Subscribe(ctx, "orders.dlq", "ops", func(context.Context, *pubsub.Message) error { return nil }, dlqDone.observer())
	require.NoError(t, err)

	pctx, checkout := tel.tp.Tracer("test").Start(ctx, "checkout")
	require.NoError(t, b.Publish(pctx, "orders", &pubsub.Message{ID: "bad"}))
	checkout.End()
	assert.Equal(t, "dead_lettered", done.next(t).Outcome.String())
	assert.Equal(t, "acked", dlqDone.next(t).Outcome.String())

	byName := map[string]trace.SpanContext{}
	parents := map[string]trace.SpanContext{}
	for _, s := range tel.spans.Ended() {
		byName[s.Name()] = s.SpanContext()
		parents[s.Name()] = s.Parent()
	}
	require.Len(t, byName, 5, "checkout, send and process of orders and of orders.dlq")
	for child, parent := range map[string]string{
		"send orders":        "checkout",
		"process orders":     "send orders",
		"send orders.dlq":    "process orders",
		"process orders.dlq": "send orders.dlq",
	} {
		assert.Equal(t, byName["checkout"].TraceID(), byName[child].TraceID(), child)
		assert.Equal(t, byName[parent].SpanID(), parents[child].SpanID(), "%s is a child of %s", child, parent)
	}
}

// TestNoProviders: with the global providers (none installed) or explicit
// no-op ones, messages flow, retries work, handlers see no span and no trace
// metadata is added.
func TestNoProviders(t *testing.T) {
	for name, opts := range map[string][]otelpubsub.Option{
		"global":   nil,
		"explicit": {otelpubsub.WithTracerProvider(tracenoop.NewTracerProvider()), otelpubsub.WithMeterProvider(metricnoop.NewMeterProvider())},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b, err := memory.New(memory.Config{}, otelpubsub.Instrument(append(opts, otelpubsub.WithLogger(nil))...), pubsub.WithLogger(nil))
			require.NoError(t, err)
			defer func() { _ = b.Close() }()
			delivered := make(chan *pubsub.Message, 2)
			done := newSettlements()
			_, err = b.Subscribe(ctx, "orders", "g", func(ctx context.Context, m *pubsub.Message) error {
				assert.False(t, trace.SpanContextFromContext(ctx).IsValid(), "no span without a provider")
				delivered <- m
				if m.Attempt == 1 {
					panic("retried all the same")
				}
				return nil
			}, fast, done.observer())
			require.NoError(t, err)
			require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "n", Metadata: map[string]string{"k": "v"}}))
			assert.Equal(t, map[string][]string{"n": {"retried", "acked"}}, done.take(t, 2))
			<-delivered
			m := <-delivered
			assert.Equal(t, map[string]string{"k": "v"}, m.Metadata, "no trace metadata added")
			assert.Equal(t, 2, m.Attempt)
		})
	}
}

// TestNoProviderStillPropagates: a trace context in Publish's context (from
// an incoming request, say) reaches the handler even without a provider.
func TestNoProviderStillPropagates(t *testing.T) {
	ctx := context.Background()
	b, err := memory.New(memory.Config{}, otelpubsub.Instrument(otelpubsub.WithLogger(nil)), pubsub.WithLogger(nil))
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	ran := make(handlerSpans, 1)
	delivered := make(chan map[string]string, 1)
	_, err = b.Subscribe(ctx, "orders", "g", ran.handler(func(m *pubsub.Message) error {
		delivered <- m.Metadata
		return nil
	}))
	require.NoError(t, err)
	incoming := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	require.NoError(t, b.Publish(trace.ContextWithRemoteSpanContext(ctx, incoming), "orders", &pubsub.Message{}))
	sc := ran.next(t)
	assert.Equal(t, incoming.TraceID(), sc.TraceID())
	assert.Equal(t, incoming.SpanID(), sc.SpanID(), "no-op spans carry their parent's context")
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(ctx, incoming), carrier)
	assert.Equal(t, map[string]string(carrier), <-delivered)
}

// TestSubscribeInHandlerKeepsDeliveriesApart: a handler that subscribes
// with its own context passes its process span's context to the new
// subscription; a delivery that subscription settles without running its
// handler (here dead-lettered on arrival) gets its own span and leaves the
// enclosing delivery's span and counts alone.
func TestSubscribeInHandlerKeepsDeliveriesApart(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.broker(t, memory.Config{})
	inner := newSettlements()

	// A run of "job" cut off by Shutdown's deadline: back in group "workers"
	// with Attempt 2.
	entered := make(chan struct{}, 1)
	first, err := b.Subscribe(ctx, "jobs", "workers", func(ctx context.Context, _ *pubsub.Message) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, inner.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "jobs", &pubsub.Message{ID: "job"}))
	<-entered
	expired, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, first.Shutdown(expired), context.Canceled)
	assert.Equal(t, "retried", inner.next(t).Outcome.String())

	outer := newSettlements()
	_, err = b.Subscribe(ctx, "orders", "g", func(ctx context.Context, _ *pubsub.Message) error {
		if _, err := b.Subscribe(ctx, "jobs", "workers", func(context.Context, *pubsub.Message) error { return nil },
			pubsub.WithMaxAttempts(1), inner.observer()); err != nil {
			return err
		}
		select { // not inner.next: FailNow belongs to the test's goroutine
		case s := <-inner:
			assert.Equal(t, []any{"job", "dead_lettered", 2}, []any{s.Message.ID, s.Outcome.String(), s.Message.Attempt})
		case <-time.After(waitFor):
			assert.Fail(t, "the job was not settled")
		}
		return nil
	}, outer.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "order"}))
	assert.Equal(t, "acked", outer.next(t).Outcome.String())
	outer.quiet(t)

	assert.Equal(t, totalsOf(map[string]int64{otelpubsub.MetricSent: 2, otelpubsub.MetricConsumed: 2,
		otelpubsub.MetricRetried: 1, otelpubsub.MetricDeadLettered: 1, otelpubsub.MetricAcked: 1,
		otelpubsub.MetricProcessDuration: 2}), tel.collect(t).totals())
	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, procs, 3)
	assert.Equal(t, processAttrs("jobs", "workers", "job", 0, 1, "retried"), attrs(procs[0].Attributes()...))
	assert.Equal(t, processAttrs("jobs", "workers", "job", 0, 2, "dead_lettered", errorString), attrs(procs[1].Attributes()...))
	assert.Equal(t, processAttrs("orders", "g", "order", 0, 1, "acked"), attrs(procs[2].Attributes()...))
	assert.Equal(t, procs[0].Parent().SpanID(), procs[1].Parent().SpanID(), "both children of the job's send span")
}
