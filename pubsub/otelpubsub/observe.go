package otelpubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
)

// processKey is the context key of a delivery's process span and metric
// attributes, from onReceive to onSettle.
type processKey struct{}

type process struct {
	span trace.Span
	base metric.MeasurementOption // system, topic, group
}

// onReceive starts the process span of a delivery, whose parent is the send
// span read from the metadata (or none: never a span of Subscribe's
// context), counts the delivery and the handler in flight.
func (in *instrumentation) onReceive(ctx context.Context, d pubsub.Delivery) context.Context {
	dest := semconv.MessagingDestinationName(d.Topic)
	grp := semconv.MessagingConsumerGroupName(d.Group)
	op := semconv.MessagingOperationName("process")
	parent := in.cfg.propagator().Extract(trace.ContextWithSpanContext(ctx, trace.SpanContext{}),
		propagation.MapCarrier(d.Message.Metadata))
	hctx, span := in.tracer.Start(parent, "process "+d.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(in.system, dest, grp, op,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingMessageID(d.Message.ID),
			semconv.MessagingMessageBodySize(len(d.Message.Payload)),
			AttemptKey.Int(d.Message.Attempt)))
	p := &process{span: span, base: metric.WithAttributeSet(attribute.NewSet(in.system, dest, grp))}
	in.ins.consumed.Add(hctx, 1, metric.WithAttributeSet(attribute.NewSet(in.system, dest, grp, op)))
	in.ins.inFlight.Add(hctx, 1, p.base)
	return context.WithValue(hctx, processKey{}, p)
}

// onSettle records the outcome the delivery loop reports: the outcome
// counter, and for deliveries that ran a handler, the duration histogram
// and the end of the process span.
func (in *instrumentation) onSettle(ctx context.Context, st pubsub.Settlement) {
	p, ran := ctx.Value(processKey{}).(*process)
	base := p.baseOr(in.system, st.Topic, st.Group)
	switch st.Outcome {
	case pubsub.OutcomeAcked:
		in.ins.acked.Add(ctx, 1, base)
	case pubsub.OutcomeRetried:
		in.ins.retried.Add(ctx, 1, base)
	case pubsub.OutcomeDeadLettered:
		in.ins.deadLettered.Add(ctx, 1, base)
	case pubsub.OutcomeReleased:
		in.ins.released.Add(ctx, 1, base)
	case pubsub.OutcomeParked:
		in.ins.parked.Add(ctx, 1, base)
		return // not final: a dead letter or a hand-back follows
	case pubsub.OutcomeSettleFailed:
		in.ins.settleFailed.Add(ctx, 1, base)
	}
	if !ran || p.span == nil {
		return
	}
	span := p.span
	p.span = nil // a parked delivery reports again; end the span once
	in.ins.inFlight.Add(ctx, -1, base)
	dest := semconv.MessagingDestinationName(st.Topic)
	grp := semconv.MessagingConsumerGroupName(st.Group)
	attrs := []attribute.KeyValue{in.system, dest, grp, semconv.MessagingOperationName("process"), OutcomeKey.String(st.Outcome.String())}
	failure := st.Cause
	if failure != nil {
		attrs = append(attrs, semconv.ErrorType(failure))
	}
	in.ins.duration.Record(ctx, st.Duration.Seconds(), metric.WithAttributes(attrs...))

	span.SetAttributes(OutcomeKey.String(st.Outcome.String()))
	var pe *pubsub.PanicError
	isPanic := errors.As(failure, &pe)
	if failure != nil {
		span.SetAttributes(semconv.ErrorType(failure))
		span.RecordError(failure, trace.WithStackTrace(isPanic))
		span.SetStatus(codes.Error, failure.Error())
	} else if st.Err != nil {
		span.RecordError(st.Err)
		span.SetStatus(codes.Error, st.Err.Error())
	}
	span.End()

	l := in.cfg.log()
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	la := []slog.Attr{slog.String("topic", st.Topic), slog.String("group", st.Group),
		slog.String("message_id", st.Message.ID), slog.Int("attempt", st.Message.Attempt),
		slog.String("outcome", st.Outcome.String()), slog.Duration("duration", st.Duration.Round(time.Microsecond))}
	la = append(la, traceAttrs(span.SpanContext())...)
	if failure != nil {
		la = append(la, slog.Any("err", failure))
	}
	if isPanic {
		la = append(la, slog.String("panic", fmt.Sprint(pe.Value)))
	}
	l.LogAttrs(ctx, slog.LevelDebug, "otelpubsub: handled", la...)
}

// baseOr returns p's metric attributes, or those of a delivery that had no
// OnReceive (settled without running the handler).
func (p *process) baseOr(system attribute.KeyValue, topic, group string) metric.MeasurementOption {
	if p != nil {
		return p.base
	}
	return metric.WithAttributeSet(attribute.NewSet(system, semconv.MessagingDestinationName(topic), semconv.MessagingConsumerGroupName(group)))
}
