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
	// included: one per pubsub.Observer.OnReceive. Deliveries the loop
	// settles without running the handler are not in it.
	MetricConsumed = "messaging.client.consumed.messages"
	// MetricProcessDuration is the histogram of handler durations in seconds
	// (s), one point per handler run, recorded with the delivery's final
	// outcome (a parked one with the outcome that follows) and, when the
	// handler failed, error.type.
	MetricProcessDuration = "messaging.process.duration"
	// MetricAcked counts messages acked after their handler returned nil
	// ({message}): pubsub.OutcomeAcked.
	MetricAcked = "switchyard.messages.acked"
	// MetricRetried counts messages handed back to be redelivered with the
	// next Attempt ({message}): pubsub.OutcomeRetried.
	MetricRetried = "switchyard.messages.retried"
	// MetricDeadLettered counts messages stored in their group's dead
	// letters (or published to the WithDeadLetter topic) ({message}):
	// pubsub.OutcomeDeadLettered.
	MetricDeadLettered = "switchyard.messages.dead_lettered"
	// MetricReleased counts messages handed back untouched by a stopping
	// subscription ({message}): pubsub.OutcomeReleased.
	MetricReleased = "switchyard.messages.released"
	// MetricParked counts dead letters that could not be stored at first
	// ({message}): pubsub.OutcomeParked. It is not a final outcome: each
	// parked message is counted again, as dead-lettered or retried, when
	// its dead letter is stored or its subscription stops.
	MetricParked = "switchyard.messages.parked"
	// MetricSettleFailed counts acks, retries and releases the broker did
	// not take ({message}): pubsub.OutcomeSettleFailed.
	MetricSettleFailed = "switchyard.messages.settle_failed"
	// MetricInFlight is an up-down counter of handlers running now
	// ({handler}): up at OnReceive, down at the delivery's first outcome,
	// so a parked message (whose handler has returned) is not in it.
	MetricInFlight = "switchyard.handlers.in_flight"
)

// Attribute keys of Switchyard's own, outside the reserved messaging.*
// namespace.
const (
	// AttemptKey is the delivery attempt of a process span: 1 on the first
	// delivery (pubsub.Message.Attempt).
	AttemptKey = attribute.Key("switchyard.message.attempt")
	// OutcomeKey is what the delivery loop did with a message: the name of
	// its final pubsub.Outcome ("acked", "retried", "dead_lettered",
	// "released", "settle_failed") on process spans and the
	// process-duration histogram, and "parked" on the exception event of a
	// process span whose dead letter was not stored at first.
	OutcomeKey = attribute.Key("switchyard.handler.outcome")
)

// instrumentationName names the tracer and meter.
const instrumentationName = "github.com/switchyard-go/switchyard/pubsub/otelpubsub"

type instruments struct {
	sent, consumed                                               metric.Int64Counter
	acked, retried, deadLettered, released, parked, settleFailed metric.Int64Counter
	inFlight                                                     metric.Int64UpDownCounter
	duration                                                     metric.Float64Histogram
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
	ins.acked = counter(MetricAcked, "Number of messages acked after their handler returned nil.")
	ins.retried = counter(MetricRetried, "Number of messages handed back to be redelivered with the next attempt.")
	ins.deadLettered = counter(MetricDeadLettered, "Number of messages stored as dead letters.")
	ins.released = counter(MetricReleased, "Number of messages handed back untouched by a stopping subscription.")
	ins.parked = counter(MetricParked, "Number of dead letters that could not be stored at first.")
	ins.settleFailed = counter(MetricSettleFailed, "Number of acks, retries and releases the broker did not take.")
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
