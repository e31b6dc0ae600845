package otelpubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
)

// processKey is the context key of a delivery's *process, from onReceive to
// onSettle.
type processKey struct{}

// process is one delivery whose handler runs, from OnReceive to its final
// outcome. The loop reports the outcomes of one delivery one after another,
// but from the worker or (at Shutdown's deadline) from Shutdown's
// goroutine: mu keeps that safe whatever the order.
type process struct {
	msg *pubsub.Message // the delivery's, to tell it from a process inherited through Subscribe's context
	// id and attempt are msg's at OnReceive, for the log line: the handler
	// may change msg, and may still run when Shutdown's deadline reports
	// its outcome.
	id      string
	attempt int
	span    trace.Span
	base    metric.MeasurementOption // system, topic, group
	start   time.Time

	mu       sync.Mutex
	returned bool          // an outcome was reported: the handler is no longer in flight
	took     time.Duration // the handler's duration, from the first outcome
	ended    bool          // a final outcome was reported: the span has ended
}

// onReceive starts the process span of a delivery, whose parent is the send
// span read from the metadata (or none: never a span of Subscribe's
// context), and counts the delivery and the handler in flight.
func (in *instrumentation) onReceive(ctx context.Context, d pubsub.Delivery) context.Context {
	hctx, span := in.startProcess(ctx, d.Topic, d.Group, d.Message)
	dest := semconv.MessagingDestinationName(d.Topic)
	grp := semconv.MessagingConsumerGroupName(d.Group)
	p := &process{msg: d.Message, id: d.Message.ID, attempt: d.Message.Attempt, span: span, start: time.Now(),
		base: metric.WithAttributeSet(attribute.NewSet(in.system, dest, grp))}
	in.ins.consumed.Add(hctx, 1, metric.WithAttributeSet(attribute.NewSet(in.system, dest, grp, semconv.MessagingOperationName("process"))))
	in.ins.inFlight.Add(hctx, 1, p.base)
	return context.WithValue(hctx, processKey{}, p)
}

// startProcess starts a process span for msg, a child of the trace context
// in its metadata (a remote parent), or a root: the span of ctx (Subscribe's
// context) is never its parent.
func (in *instrumentation) startProcess(ctx context.Context, topic, group string, msg *pubsub.Message) (context.Context, trace.Span) {
	parent := in.cfg.propagator().Extract(trace.ContextWithSpanContext(ctx, trace.SpanContext{}),
		propagation.MapCarrier(msg.Metadata))
	return in.tracer.Start(parent, "process "+topic,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(in.system,
			semconv.MessagingDestinationName(topic),
			semconv.MessagingConsumerGroupName(group),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingMessageID(msg.ID),
			semconv.MessagingMessageBodySize(len(msg.Payload)),
			AttemptKey.Int(msg.Attempt)))
}

// onSettle records an outcome the delivery loop reports: the outcome's
// counter; for a delivery whose handler ran, the end of its time in flight
// (at its first outcome), and at its final outcome the duration histogram
// and the end of its span. A delivery settled without running the handler
// gets a span of its own at its final outcome, and no duration.
func (in *instrumentation) onSettle(ctx context.Context, st pubsub.Settlement) {
	p, _ := ctx.Value(processKey{}).(*process)
	if p != nil && p.msg != st.Message {
		p = nil // an enclosing handler's, whose context Subscribe was given
	}
	base := metric.WithAttributeSet(attribute.NewSet(in.system,
		semconv.MessagingDestinationName(st.Topic), semconv.MessagingConsumerGroupName(st.Group)))
	if p != nil {
		base = p.base
	}
	in.count(ctx, st.Outcome, base)

	if p == nil {
		if st.Outcome == pubsub.OutcomeParked {
			return // not final; the span is made at the final outcome
		}
		_, span := in.startProcess(ctx, st.Topic, st.Group, st.Message)
		in.endSpan(ctx, span, st, 0, st.Message.ID, st.Message.Attempt)
		return
	}

	p.mu.Lock()
	first := !p.returned
	if first {
		p.returned, p.took = true, st.Duration
		if p.took == 0 { // handed back at Shutdown's deadline while it ran
			p.took = time.Since(p.start)
		}
	}
	final := st.Outcome != pubsub.OutcomeParked && !p.ended
	if final {
		p.ended = true
	}
	took := p.took
	p.mu.Unlock()

	if first {
		in.ins.inFlight.Add(ctx, -1, p.base)
	}
	if st.Outcome == pubsub.OutcomeParked {
		p.span.RecordError(st.Err, trace.WithAttributes(OutcomeKey.String(st.Outcome.String())))
		return
	}
	if !final {
		return
	}
	attrs := []attribute.KeyValue{in.system,
		semconv.MessagingDestinationName(st.Topic), semconv.MessagingConsumerGroupName(st.Group),
		semconv.MessagingOperationName("process"), OutcomeKey.String(st.Outcome.String())}
	if st.Cause != nil {
		attrs = append(attrs, semconv.ErrorType(st.Cause))
	}
	in.ins.duration.Record(ctx, took.Seconds(), metric.WithAttributes(attrs...))
	in.endSpan(ctx, p.span, st, took, p.id, p.attempt)
}

// count adds one to the counter of outcome o.
func (in *instrumentation) count(ctx context.Context, o pubsub.Outcome, base metric.MeasurementOption) {
	switch o {
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
	case pubsub.OutcomeSettleFailed:
		in.ins.settleFailed.Add(ctx, 1, base)
	}
}

// endSpan sets the final outcome on span (with the handler's failure and
// the broker's error, if any), ends it and logs the outcome of the delivery
// of message id with Attempt attempt.
func (in *instrumentation) endSpan(ctx context.Context, span trace.Span, st pubsub.Settlement, took time.Duration, id string, attempt int) {
	span.SetAttributes(OutcomeKey.String(st.Outcome.String()))
	var pe *pubsub.PanicError
	isPanic := errors.As(st.Cause, &pe)
	if st.Cause != nil {
		var opts []trace.EventOption
		if isPanic { // the panic's own stack, not this goroutine's
			opts = append(opts, trace.WithAttributes(semconv.ExceptionStacktrace(string(pe.Stack))))
		}
		span.SetAttributes(semconv.ErrorType(st.Cause))
		span.RecordError(st.Cause, opts...)
		span.SetStatus(codes.Error, st.Cause.Error())
	}
	if st.Err != nil {
		span.RecordError(st.Err)
		if st.Cause == nil {
			span.SetAttributes(semconv.ErrorType(st.Err))
			span.SetStatus(codes.Error, st.Err.Error())
		}
	}
	span.End()

	l := in.cfg.log()
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	la := []slog.Attr{slog.String("topic", st.Topic), slog.String("group", st.Group),
		slog.String("message_id", id), slog.Int("attempt", attempt),
		slog.String("outcome", st.Outcome.String()), slog.Duration("duration", took.Round(time.Microsecond))}
	la = append(la, traceAttrs(span.SpanContext())...)
	if st.Cause != nil {
		la = append(la, slog.Any("err", st.Cause))
	}
	if isPanic {
		la = append(la, slog.String("panic", fmt.Sprint(pe.Value)))
	}
	if st.Err != nil {
		la = append(la, slog.Any("settle_err", st.Err))
	}
	l.LogAttrs(ctx, slog.LevelDebug, "otelpubsub: settled", la...)
}
