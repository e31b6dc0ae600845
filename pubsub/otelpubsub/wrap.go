package otelpubsub

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Wrap returns a Broker that does what b does and traces, measures and logs
// it: Publish injects the trace context into each message's metadata under
// a send span, and every handler given to Subscribe runs under a process
// span that is a child of the send span, as described in the package
// documentation. It is safe for concurrent use when b is.
//
// The result implements pubsub.GroupCreator, and pubsub.Pinger, exactly when
// b does, forwarding to b. Close closes b. Unwrapping: the result has a
// method Unwrap() pubsub.Broker returning b. Wrapping a wrapped broker
// instruments it twice.
func Wrap(b pubsub.Broker, opts ...Option) pubsub.Broker {
	c := newConfig(b, opts)
	w := &broker{
		inner:  b,
		cfg:    c,
		tracer: c.tracerProvider.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL)),
		ins:    newInstruments(c.meterProvider),
		system: semconv.MessagingSystemKey.String(c.system),
	}
	_, canGroup := b.(pubsub.GroupCreator)
	_, canPing := b.(pinger)
	switch {
	case canGroup && canPing:
		return groupPingBroker{w}
	case canGroup:
		return groupBroker{w}
	case canPing:
		return pingBroker{w}
	default:
		return w
	}
}

// pinger is pubsub.Pinger's method set.
type pinger interface {
	Ping(ctx context.Context) error
}

// broker is the wrapper; the types below add the optional interfaces of the
// wrapped broker.
type broker struct {
	inner  pubsub.Broker
	cfg    config
	tracer trace.Tracer
	ins    instruments
	system attribute.KeyValue
}

type groupBroker struct{ *broker }
type pingBroker struct{ *broker }
type groupPingBroker struct{ *broker }

var (
	_ pubsub.Broker       = (*broker)(nil)
	_ pubsub.GroupCreator = groupBroker{}
	_ pinger              = pingBroker{}
	_ pubsub.GroupCreator = groupPingBroker{}
	_ pinger              = groupPingBroker{}
)

// Unwrap returns the wrapped broker.
func (b *broker) Unwrap() pubsub.Broker { return b.inner }

// Close closes the wrapped broker.
func (b *broker) Close() error { return b.inner.Close() }

// CreateGroup forwards to the wrapped broker's pubsub.GroupCreator.
func (b groupBroker) CreateGroup(ctx context.Context, topic, group string) error {
	return b.inner.(pubsub.GroupCreator).CreateGroup(ctx, topic, group)
}

// Ping forwards to the wrapped broker's pubsub.Pinger.
func (b pingBroker) Ping(ctx context.Context) error { return b.inner.(pinger).Ping(ctx) }

// CreateGroup forwards to the wrapped broker's pubsub.GroupCreator.
func (b groupPingBroker) CreateGroup(ctx context.Context, topic, group string) error {
	return b.inner.(pubsub.GroupCreator).CreateGroup(ctx, topic, group)
}

// Ping forwards to the wrapped broker's pubsub.Pinger.
func (b groupPingBroker) Ping(ctx context.Context) error { return b.inner.(pinger).Ping(ctx) }

// traceAttrs returns the log attributes naming the span sc, if it is valid.
func traceAttrs(sc trace.SpanContext) []slog.Attr {
	if !sc.IsValid() {
		return nil
	}
	return []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())}
}
