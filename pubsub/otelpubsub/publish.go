package otelpubsub

import (
	"context"
	"log/slog"
	"maps"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Publish implements pubsub.Publisher. For each message it starts a send
// span (a child of ctx's span), sets ID when it is empty, and publishes a
// copy of the message whose metadata also carries the span's context; the
// caller's Message and its Metadata map are not modified, except for ID. It
// then records the sent-messages counter and ends the spans, with an error
// status when the wrapped Publish failed. A publish to an invalid topic name
// is passed through without spans or metrics.
func (b *broker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	if pubsub.ValidateTopic(topic) != nil {
		return b.inner.Publish(ctx, topic, msgs...)
	}
	prop := b.cfg.propagator()
	name := "send " + topic
	dest := semconv.MessagingDestinationName(topic)
	sent := make([]*pubsub.Message, len(msgs))
	spans := make([]trace.Span, 0, len(msgs))
	scs := make([]trace.SpanContext, len(msgs))
	for i, m := range msgs {
		if m == nil {
			continue // the wrapped Publish rejects the batch
		}
		if m.ID == "" {
			m.ID = pubsub.NewID()
		}
		sctx, span := b.tracer.Start(ctx, name,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(b.system, dest,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName("send"),
				semconv.MessagingMessageID(m.ID),
				semconv.MessagingMessageBodySize(len(m.Payload))))
		spans = append(spans, span)
		scs[i] = span.SpanContext()
		sent[i] = withTraceContext(sctx, prop, m)
	}

	err := b.inner.Publish(ctx, topic, sent...)

	attrs := []attribute.KeyValue{b.system, dest, semconv.MessagingOperationName("send")}
	if err != nil {
		attrs = append(attrs, semconv.ErrorType(err))
	}
	b.ins.sent.Add(ctx, int64(len(spans)), metric.WithAttributes(attrs...))
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(semconv.ErrorType(err))
		}
		span.End()
	}
	if l := b.cfg.log(); l.Enabled(ctx, slog.LevelDebug) {
		for i, m := range msgs {
			if m == nil {
				continue
			}
			la := append([]slog.Attr{slog.String("topic", topic), slog.String("message_id", m.ID)},
				traceAttrs(scs[i])...)
			if err != nil {
				l.LogAttrs(ctx, slog.LevelDebug, "otelpubsub: publish failed", append(la, slog.Any("err", err))...)
			} else {
				l.LogAttrs(ctx, slog.LevelDebug, "otelpubsub: published", la...)
			}
		}
	}
	return err
}

// withTraceContext returns a shallow copy of m whose Metadata is a copy of
// m's with the trace context of ctx added by prop; m itself when prop
// writes nothing (no valid span in ctx).
func withTraceContext(ctx context.Context, prop propagation.TextMapPropagator, m *pubsub.Message) *pubsub.Message {
	carrier := propagation.MapCarrier{}
	prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return m
	}
	c := *m
	c.Metadata = make(map[string]string, len(m.Metadata)+len(carrier))
	maps.Copy(c.Metadata, m.Metadata)
	maps.Copy(c.Metadata, carrier)
	return &c
}
