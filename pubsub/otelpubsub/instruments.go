package otelpubsub

import (
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Names of the metric instruments. The first three are the OpenTelemetry
// messaging semantic conventions' (v1.43.0); the others are Switchyard's.
const (
	// MetricSent counts messages passed to Publish ({message}), with
	// error.type set when Publish failed: published messages are the points
	// without error.type.
	MetricSent = "messaging.client.sent.messages"
	// MetricConsumed counts deliveries to handlers ({message}), redeliveries
	// included.
	MetricConsumed = "messaging.client.consumed.messages"
	// MetricProcessDuration is the histogram of handler durations in seconds
	// (s), with the outcome attribute and, when the handler failed,
	// error.type.
	MetricProcessDuration = "messaging.process.duration"
	// MetricAcked counts handler calls that returned nil ({message}).
	MetricAcked = "switchyard.messages.acked"
	// MetricRetried counts handler failures (errors and panics) that the
	// delivery loop retries ({message}).
	MetricRetried = "switchyard.messages.retried"
	// MetricDeadLettered counts handler failures that send the message to
	// the dead-letter topic: Permanent errors and failures of the last
	// attempt ({message}).
	MetricDeadLettered = "switchyard.messages.dead_lettered"
	// MetricInFlight is an up-down counter of handlers running now
	// ({handler}).
	MetricInFlight = "switchyard.handlers.in_flight"
)

// Attribute keys of Switchyard's own, outside the reserved messaging.*
// namespace.
const (
	// AttemptKey is the delivery attempt of a process span: 1 on the first
	// delivery (pubsub.Message.Attempt).
	AttemptKey = attribute.Key("switchyard.message.attempt")
	// OutcomeKey is what the delivery loop does with a handled message, on
	// process spans and the process-duration histogram: one of
	// OutcomeAck, OutcomeRetry, OutcomeDeadLetter, OutcomeAbandoned.
	OutcomeKey = attribute.Key("switchyard.handler.outcome")
)

// Values of OutcomeKey.
const (
	// OutcomeAck: the handler returned nil; the message is acked.
	OutcomeAck = "ack"
	// OutcomeRetry: the handler failed or panicked before its last attempt;
	// the message is redelivered after a backoff.
	OutcomeRetry = "retry"
	// OutcomeDeadLetter: the handler returned a Permanent error or failed
	// its last attempt; the message goes to the dead-letter topic.
	OutcomeDeadLetter = "dead_letter"
	// OutcomeAbandoned: the subscription stopped without waiting for the
	// handler (its context was cancelled); the message is left to be
	// redelivered and no outcome counter is incremented.
	OutcomeAbandoned = "abandoned"
)

// instrumentationName names the tracer and meter.
const instrumentationName = "github.com/switchyard-go/switchyard/pubsub/otelpubsub"

type instruments struct {
	sent, consumed, acked, retried, deadLettered metric.Int64Counter
	inFlight                                     metric.Int64UpDownCounter
	duration                                     metric.Float64Histogram
}

// newInstruments makes the instruments of mp's meter. An error (which the
// OpenTelemetry SDK reports only for invalid names or options) goes to
// otel.Handle; the instruments returned with it still work.
func newInstruments(mp metric.MeterProvider) instruments {
	m := mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	var ins instruments
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{message}"))
		errs = append(errs, err)
		return c
	}
	ins.sent = counter(MetricSent, "Number of messages the application passed to Publish.")
	ins.consumed = counter(MetricConsumed, "Number of messages that were delivered to the application.")
	ins.acked = counter(MetricAcked, "Number of handler calls that returned nil: messages acked.")
	ins.retried = counter(MetricRetried, "Number of handler failures that are retried.")
	ins.deadLettered = counter(MetricDeadLettered, "Number of handler failures that dead-letter the message.")
	var err error
	ins.inFlight, err = m.Int64UpDownCounter(MetricInFlight,
		metric.WithDescription("Number of message handlers running."), metric.WithUnit("{handler}"))
	errs = append(errs, err)
	ins.duration, err = m.Float64Histogram(MetricProcessDuration,
		metric.WithDescription("Duration of processing operation."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		otel.Handle(err)
	}
	return ins
}
