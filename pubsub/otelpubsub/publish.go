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

// instrumentation holds what Instrument's middleware and observer share.
type instrumentation struct {
	cfg    config
	tracer trace.Tracer
	ins    instruments
	system attribute.KeyValue
}

// publishMiddleware starts a send span for each message (a child of ctx's
// span, or when ctx has none, of the trace context in the message's
// metadata: a forwarded message, or a dead letter published to
// pubsub.WithDeadLetter's topic), sets ID when it is empty, and publishes a
// copy of the message whose metadata also carries the span's context; the
// caller's Message and its Metadata map are not modified, except for ID. It
// then records the sent counter and ends the spans, with an error status
// when Publish failed. A publish to an invalid topic name passes through
// untouched.
func (in *instrumentation) publishMiddleware(next pubsub.PublishFunc) pubsub.PublishFunc {
	return func(ctx context.Context, topic string, msgs []*pubsub.Message) error {
		if pubsub.ValidateTopic(topic) != nil {
			return next(ctx, topic, msgs)
		}
		prop := in.cfg.propagator()
		name := "send " + topic
		dest := semconv.MessagingDestinationName(topic)
		sent := make([]*pubsub.Message, len(msgs))
		spans := make([]trace.Span, 0, len(msgs))
		scs := make([]trace.SpanContext, len(msgs))
		for i, m := range msgs {
			if m == nil {
				continue // Publish rejects the batch
			}
			if m.ID == "" {
				m.ID = pubsub.NewID()
			}
			sctx, span := in.tracer.Start(sendParent(ctx, prop, m), name,
				trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(in.system, dest,
					semconv.MessagingOperationTypeSend,
					semconv.MessagingOperationName("send"),
					semconv.MessagingMessageID(m.ID),
					semconv.MessagingMessageBodySize(len(m.Payload))))
			spans = append(spans, span)
			scs[i] = span.SpanContext()
			sent[i] = withTraceContext(sctx, prop, m)
		}

		err := next(ctx, topic, sent)

		attrs := []attribute.KeyValue{in.system, dest, semconv.MessagingOperationName("send")}
		if err != nil {
			attrs = append(attrs, semconv.ErrorType(err))
		}
		in.ins.sent.Add(ctx, int64(len(spans)), metric.WithAttributes(attrs...))
		for _, span := range spans {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
				span.SetAttributes(semconv.ErrorType(err))
			}
			span.End()
		}
		if l := in.cfg.log(); l.Enabled(ctx, slog.LevelDebug) {
			for i, m := range msgs {
				if m == nil {
					continue
				}
				la := append([]slog.Attr{slog.String("topic", topic), slog.String("message_id", m.ID)}, traceAttrs(scs[i])...)
				if err != nil {
					l.LogAttrs(ctx, slog.LevelDebug, "otelpubsub: publish failed", append(la, slog.Any("err", err))...)
				} else {
					l.LogAttrs(ctx, slog.LevelDebug, "otelpubsub: published", la...)
				}
			}
		}
		return err
	}
}

// sendParent returns the parent context of m's send span: ctx when it
// holds a span, else ctx with the trace context of m's metadata (none when
// m has no trace metadata: the send span is then a root).
func sendParent(ctx context.Context, prop propagation.TextMapPropagator, m *pubsub.Message) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() || len(m.Metadata) == 0 {
		return ctx
	}
	return prop.Extract(ctx, propagation.MapCarrier(m.Metadata))
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

// traceAttrs returns the log attributes naming the span sc, if it is valid.
func traceAttrs(sc trace.SpanContext) []slog.Attr {
	if !sc.IsValid() {
		return nil
	}
	return []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())}
}
