package otelpubsub

import (
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Instrument returns the broker option that traces, measures and logs a
// broker: give it to transport.Open or a transport's constructor. It adds
// publish middleware (send spans, trace context written into each message's
// metadata, the sent counter) and an Observer (process spans, the consumed
// and outcome counters, handler durations), as the package documentation
// describes. The outcomes are the delivery loop's own, never guessed.
func Instrument(opts ...Option) pubsub.BrokerOption {
	in := newInstrumentation(opts)
	return pubsub.WithOptions(
		pubsub.WithPublishMiddleware(in.publishMiddleware),
		pubsub.WithObserver(pubsub.Observer{OnReceive: in.onReceive, OnSettle: in.onSettle}),
	)
}

// PublishMiddleware returns Instrument's publish middleware alone: send
// spans in the caller's trace, the trace context written into a copy of
// each message's metadata, and the sent counter. It is for code that
// publishes later on the caller's behalf: given to outbox.Config's
// StoreMiddleware, the messages stored in a transaction carry the request's
// trace, and the relay's publish through an instrumented broker continues
// it (its send span a child of the stored one).
func PublishMiddleware(opts ...Option) func(next pubsub.PublishFunc) pubsub.PublishFunc {
	return newInstrumentation(opts).publishMiddleware
}

func newInstrumentation(opts []Option) *instrumentation {
	c := newConfig(opts)
	return &instrumentation{
		cfg:    c,
		tracer: c.tracerProvider.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL)),
		ins:    newInstruments(c.meterProvider),
		system: semconv.MessagingSystemKey.String(c.system),
	}
}
