package transporttest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
)

// testTraceContext: through otelpubsub.Instrument, the trace context that Publish
// writes to the metadata ("traceparent", "tracestate") survives the trip and
// every redelivery, so that each delivery's process span is a child of the
// message's send span, in the publisher's trace.
func (s *suite) testTraceContext(t *testing.T) {
	ctx := s.ctx(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := s.h.NewBroker(t, otelpubsub.Instrument(otelpubsub.WithTracerProvider(tp), otelpubsub.WithLogger(nil)))
	topic := topicName(t)
	in := newInbox()
	handlerSpans := make(chan trace.SpanContext, 2)
	subscribe(t, ctx, b, topic, "g", func(ctx context.Context, m *pubsub.Message) error {
		in.add(0, m)
		handlerSpans <- trace.SpanContextFromContext(ctx)
		if m.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}, pubsub.WithBackoff(10*time.Millisecond, 20*time.Millisecond))

	pctx, parent := tp.Tracer("transporttest").Start(ctx, "parent")
	sent := &pubsub.Message{ID: "traced", Metadata: map[string]string{"app": "1"}, Payload: []byte("p")}
	require.NoError(t, b.Publish(pctx, topic, sent))
	parent.End()
	got := in.waitN(t, 2, s.h.Timeout)

	var send sdktrace.ReadOnlySpan
	var procs []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		send, procs = nil, nil
		for _, sp := range spans.Ended() {
			switch sp.SpanKind() {
			case trace.SpanKindProducer:
				send = sp
			case trace.SpanKindConsumer:
				procs = append(procs, sp)
			}
		}
		return send != nil && len(procs) >= 2
	}, s.h.Timeout, 10*time.Millisecond, "waiting for the send span and two process spans")

	assert.Equal(t, parent.SpanContext().SpanID(), send.Parent().SpanID(), "send span is a child of the publisher's span")
	for i, d := range got[:2] {
		assert.Equal(t, "1", d.msg.Metadata["app"], "delivery %d: application metadata kept", i+1)
		assert.NotEmpty(t, d.msg.Metadata["traceparent"], "delivery %d: traceparent in the metadata", i+1)
		p := procs[i]
		assert.Equal(t, send.SpanContext().TraceID(), p.SpanContext().TraceID(), "delivery %d: the publisher's trace", i+1)
		assert.Equal(t, send.SpanContext().SpanID(), p.Parent().SpanID(), "delivery %d: child of the send span", i+1)
		assert.Equal(t, p.SpanContext(), <-handlerSpans, "delivery %d: the handler runs under the process span", i+1)
	}
	assert.Equal(t, map[string]string{"app": "1"}, sent.Metadata, "the caller's metadata is not modified")
}
