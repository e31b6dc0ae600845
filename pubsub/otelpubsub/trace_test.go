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

func TestProcessSpanIsChildOfSendSpan(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	got := make(spanContexts, 10)
	_, err := b.Subscribe(ctx, "orders", "billing", got.handler(func(m *pubsub.Message) error {
		if m.Attempt == 1 {
			return errors.New("try again")
		}
		return nil
	}), pubsub.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)

	pctx, parent := tel.tp.Tracer("test").Start(ctx, "checkout")
	msg := &pubsub.Message{ID: "m-1", Metadata: map[string]string{"a": "1"}, Payload: []byte("hello")}
	require.NoError(t, b.Publish(pctx, "orders", msg))
	parent.End()
	handlerSpans := []trace.SpanContext{got.next(t), got.next(t)}

	sends := tel.ended(t, trace.SpanKindProducer, 1)
	require.Len(t, sends, 1)
	send := sends[0]
	assert.Equal(t, "send orders", send.Name())
	assert.Equal(t, parent.SpanContext().SpanID(), send.Parent().SpanID(), "send span is a child of the caller's span")
	assert.Equal(t, parent.SpanContext().TraceID(), send.SpanContext().TraceID())
	assert.Contains(t, send.Attributes(), semconv.MessagingSystemKey.String("memory"))
	assert.Contains(t, send.Attributes(), semconv.MessagingDestinationName("orders"))
	assert.Contains(t, send.Attributes(), semconv.MessagingMessageID("m-1"))
	assert.Contains(t, send.Attributes(), semconv.MessagingOperationTypeSend)

	procs := tel.ended(t, trace.SpanKindConsumer, 2)
	require.Len(t, procs, 2, "one process span per delivery")
	for i, p := range procs {
		assert.Equal(t, "process orders", p.Name())
		assert.Equal(t, send.SpanContext().TraceID(), p.SpanContext().TraceID(), "delivery %d: same trace", i+1)
		assert.Equal(t, send.SpanContext().SpanID(), p.Parent().SpanID(), "delivery %d: child of the send span", i+1)
		assert.True(t, p.Parent().IsRemote(), "parent comes from the metadata")
		assert.Equal(t, p.SpanContext(), handlerSpans[i], "the handler runs under the process span")
		attrs := p.Attributes()
		assert.Contains(t, attrs, semconv.MessagingSystemKey.String("memory"))
		assert.Contains(t, attrs, semconv.MessagingDestinationName("orders"))
		assert.Contains(t, attrs, semconv.MessagingConsumerGroupName("billing"))
		assert.Contains(t, attrs, semconv.MessagingMessageID("m-1"))
		assert.Contains(t, attrs, semconv.MessagingOperationTypeProcess)
		assert.Contains(t, attrs, otelpubsub.AttemptKey.Int(i+1))
	}
	assert.Equal(t, codes.Error, procs[0].Status().Code, "failed attempt")
	assert.Contains(t, procs[0].Attributes(), otelpubsub.OutcomeKey.String(otelpubsub.OutcomeRetry))
	assert.Equal(t, codes.Unset, procs[1].Status().Code)
	assert.Contains(t, procs[1].Attributes(), otelpubsub.OutcomeKey.String(otelpubsub.OutcomeAck))

	assert.Equal(t, map[string]string{"a": "1"}, msg.Metadata, "the caller's metadata is not modified")
}

func TestPublishSetsIDAndInjectsTraceContext(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	delivered := make(chan *pubsub.Message, 1)
	_, err := b.Subscribe(ctx, "orders", "g", func(_ context.Context, m *pubsub.Message) error {
		delivered <- m
		return nil
	})
	require.NoError(t, err)

	msg := &pubsub.Message{Payload: []byte("x")} // no ID, nil Metadata
	require.NoError(t, b.Publish(ctx, "orders", msg))
	require.NotEmpty(t, msg.ID, "Publish sets the ID")
	assert.Nil(t, msg.Metadata, "the caller's message keeps its nil metadata")
	send := tel.ended(t, trace.SpanKindProducer, 1)[0]
	assert.False(t, send.Parent().IsValid(), "no caller span: the send span is a root")
	assert.Contains(t, send.Attributes(), semconv.MessagingMessageID(msg.ID))

	m := <-delivered
	assert.Equal(t, msg.ID, m.ID)
	sc := send.SpanContext()
	assert.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01", m.Metadata["traceparent"],
		"W3C trace context without any global propagator set")
}

func TestProcessSpanWithoutTraceContextIsRoot(t *testing.T) {
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)
	mb := b.(interface{ Unwrap() pubsub.Broker }).Unwrap()
	// The Subscribe context holds a span: deliveries must not become its
	// children.
	sctx, setup := tel.tp.Tracer("test").Start(context.Background(), "setup")
	defer setup.End()
	got := make(spanContexts, 1)
	_, err := b.Subscribe(sctx, "orders", "g", got.handler(nil))
	require.NoError(t, err)
	require.NoError(t, mb.Publish(context.Background(), "orders", &pubsub.Message{ID: "plain"})) // not traced

	sc := got.next(t)
	assert.True(t, sc.IsValid())
	assert.NotEqual(t, setup.SpanContext().TraceID(), sc.TraceID())
	p := tel.ended(t, trace.SpanKindConsumer, 1)[0]
	assert.False(t, p.Parent().IsValid(), "no trace context in the metadata: a root span")
}

func TestPublishFailureMarksSpans(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	b := tel.wrapMemory(t)

	// An invalid topic is passed through without telemetry.
	require.ErrorIs(t, b.Publish(ctx, "no spaces allowed", &pubsub.Message{}), pubsub.ErrInvalidTopic)
	assert.Empty(t, tel.spans.Ended())

	require.NoError(t, b.Close())
	err := b.Publish(ctx, "orders", &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"})
	require.ErrorIs(t, err, pubsub.ErrClosed)

	sends := tel.ended(t, trace.SpanKindProducer, 2)
	require.Len(t, sends, 2)
	for _, s := range sends {
		assert.Equal(t, codes.Error, s.Status().Code)
		_, ok := attr(s.Attributes(), semconv.ErrorTypeKey)
		assert.True(t, ok, "error.type on a failed send")
	}
	sent, ok := tel.collect(t)[otelpubsub.MetricSent].(metricdata.Sum[int64])
	require.True(t, ok)
	require.Len(t, sent.DataPoints, 1)
	p := sent.DataPoints[0]
	assert.EqualValues(t, 2, p.Value, "both messages counted as sent")
	assert.True(t, p.Attributes.HasValue(semconv.ErrorTypeKey), "with error.type: none published")
	assert.True(t, matches(p.Attributes, []attribute.KeyValue{semconv.MessagingDestinationName("orders")}))
}
