package otelpubsub

import (
	"context"
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

// Subscribe implements pubsub.Subscriber: it subscribes to the wrapped
// broker with h wrapped so that each delivery runs under a process span (see
// the package documentation) and is counted and timed. Invalid names and
// options are passed through for the wrapped broker to reject. When
// WithLogger was given, pubsub.WithLogger with that logger comes before
// opts.
func (b *broker) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	cfg, err := pubsub.NewSubscribeConfig(topic, group, opts...)
	if err != nil || h == nil {
		return b.inner.Subscribe(ctx, topic, group, h, opts...)
	}
	if b.cfg.loggerSet {
		opts = append([]pubsub.SubscribeOption{pubsub.WithLogger(b.cfg.logger)}, opts...)
	}
	return b.inner.Subscribe(ctx, topic, group, b.handler(cfg, h), opts...)
}

// handler returns h instrumented for the subscription cfg.
func (b *broker) handler(cfg pubsub.SubscribeConfig, h pubsub.Handler) pubsub.Handler {
	dest := semconv.MessagingDestinationName(cfg.Topic)
	grp := semconv.MessagingConsumerGroupName(cfg.Group)
	process := semconv.MessagingOperationName("process")
	name := "process " + cfg.Topic
	base := metric.WithAttributeSet(attribute.NewSet(b.system, dest, grp))
	consumed := metric.WithAttributeSet(attribute.NewSet(b.system, dest, grp, process))

	return func(ctx context.Context, msg *pubsub.Message) (err error) {
		attempt, id := msg.Attempt, msg.ID
		// The process span's parent is the send span from the metadata, or
		// none: not a span the Subscribe context may hold.
		parent := b.cfg.propagator().Extract(trace.ContextWithSpanContext(ctx, trace.SpanContext{}),
			propagation.MapCarrier(msg.Metadata))
		hctx, span := b.tracer.Start(parent, name,
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(b.system, dest, grp, process,
				semconv.MessagingOperationTypeProcess,
				semconv.MessagingMessageID(id),
				semconv.MessagingMessageBodySize(len(msg.Payload)),
				AttemptKey.Int(attempt)))
		b.ins.consumed.Add(hctx, 1, consumed)
		b.ins.inFlight.Add(hctx, 1, base)
		start := time.Now()

		defer func() {
			elapsed := time.Since(start)
			v := recover()
			failure := err
			if v != nil {
				failure = &pubsub.PanicError{Value: v}
			}
			outcome := outcomeOf(ctx, failure, attempt, cfg.MaxAttempts)
			b.ins.inFlight.Add(hctx, -1, base)
			switch outcome {
			case OutcomeAck:
				b.ins.acked.Add(hctx, 1, base)
			case OutcomeRetry:
				b.ins.retried.Add(hctx, 1, base)
			case OutcomeDeadLetter:
				b.ins.deadLettered.Add(hctx, 1, base)
			}
			attrs := []attribute.KeyValue{b.system, dest, grp, process, OutcomeKey.String(outcome)}
			if failure != nil {
				attrs = append(attrs, semconv.ErrorType(failure))
			}
			b.ins.duration.Record(hctx, elapsed.Seconds(), metric.WithAttributes(attrs...))

			span.SetAttributes(OutcomeKey.String(outcome))
			if failure != nil {
				span.SetAttributes(semconv.ErrorType(failure))
				span.RecordError(failure, trace.WithStackTrace(v != nil))
				span.SetStatus(codes.Error, failure.Error())
			}
			span.End()

			l := b.cfg.log()
			la := []slog.Attr{slog.String("topic", cfg.Topic), slog.String("group", cfg.Group),
				slog.String("message_id", id), slog.Int("attempt", attempt)}
			la = append(la, traceAttrs(span.SpanContext())...)
			if l.Enabled(hctx, slog.LevelDebug) {
				la = append(la, slog.String("outcome", outcome), slog.Duration("duration", elapsed))
				if failure != nil {
					la = append(la, slog.Any("err", failure))
				}
				if v != nil {
					la = append(la, slog.String("panic", fmt.Sprint(v)))
				}
				l.LogAttrs(hctx, slog.LevelDebug, "otelpubsub: handled", la...)
			}
			if v != nil {
				// The delivery loop recovers it, logs it at Error with the
				// stack, and settles the message.
				panic(v)
			}
		}()
		return h(hctx, msg)
	}
}

// outcomeOf returns what the delivery loop does after a handler of the
// given attempt returned failure, mirroring pubsub's Subscription: nothing
// when the handlers' context ctx was cancelled, else ack, dead-letter or
// retry.
func outcomeOf(ctx context.Context, failure error, attempt, maxAttempts int) string {
	switch {
	case ctx.Err() != nil:
		return OutcomeAbandoned
	case failure == nil:
		return OutcomeAck
	case pubsub.IsPermanent(failure) || attempt >= maxAttempts:
		return OutcomeDeadLetter
	default:
		return OutcomeRetry
	}
}
