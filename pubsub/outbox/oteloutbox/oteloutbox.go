// Package oteloutbox measures outbox relays and inboxes (package outbox)
// with OpenTelemetry, on the outbox.Observer hooks, so that package outbox
// stays free of OpenTelemetry:
//
//	ob, err := outbox.New(db, outbox.Config{Publisher: broker, Observer: oteloutbox.Observer()})
//	h := outbox.Idempotent(db, "billing", handle, outbox.WithInboxObserver(oteloutbox.Observer()))
//
// Without a meter provider set by the application (otel.SetMeterProvider,
// or WithMeterProvider) it records nothing. Traces of relayed messages come
// from the broker: a broker instrumented with otelpubsub makes a send span
// for each message the relay publishes.
//
// # Metrics
//
// The instruments, from the meter named
// "github.com/switchyard-go/switchyard/pubsub/outbox/oteloutbox":
//
//	switchyard.outbox.published     counter {message}    topic: messages a relay published
//	switchyard.outbox.failed        counter {message}    topic, error.type: messages whose Publish failed (retried later)
//	switchyard.outbox.rejected      counter {message}    topic, error.type: messages the broker rejected for good
//	switchyard.outbox.lag           histogram s          topic: from storing a message to the end of its successful Publish
//	switchyard.outbox.pending       gauge {row}          rows waiting to be published (every StatsInterval)
//	switchyard.outbox.pending.age   gauge s              age of the oldest of them
//	switchyard.inbox.duplicates     counter {message}    group: deliveries acked without running the handler
//
// topic is messaging.destination.name, group messaging.consumer.group.name
// (OpenTelemetry messaging semantic conventions v1.43.0); WithAttributes
// adds attributes of your own to every point, such as the table's name
// when a process has several outboxes. The counters count what relays and
// handlers report: a message published again after a relay crashed is
// counted again.
package oteloutbox

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
)

// Names of the metric instruments.
const (
	MetricPublished  = "switchyard.outbox.published"
	MetricFailed     = "switchyard.outbox.failed"
	MetricRejected   = "switchyard.outbox.rejected"
	MetricLag        = "switchyard.outbox.lag"
	MetricPending    = "switchyard.outbox.pending"
	MetricPendingAge = "switchyard.outbox.pending.age"
	MetricDuplicates = "switchyard.inbox.duplicates"
)

const instrumentationName = "github.com/switchyard-go/switchyard/pubsub/outbox/oteloutbox"

// Option configures Observer.
type Option func(*config)

type config struct {
	mp    metric.MeterProvider
	attrs []attribute.KeyValue
}

// WithMeterProvider sets the meter provider. Default
// otel.GetMeterProvider() at the time Observer is called; nil means the
// default.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithAttributes adds attrs to every point recorded.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *config) { c.attrs = append(c.attrs, attrs...) }
}

// Observer returns an outbox.Observer that records the metrics listed in
// the package documentation. Give the same one, or separate ones, to
// outbox.Config.Observer and outbox.WithInboxObserver. It is safe for
// concurrent use. Errors making the instruments (only for invalid names)
// go to otel.Handle; the instruments still work.
func Observer(opts ...Option) outbox.Observer {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	m := c.mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		ctr, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return ctr
	}
	in := &instruments{
		attrs:      c.attrs,
		published:  counter(MetricPublished, "{message}", "Number of messages an outbox relay published."),
		failed:     counter(MetricFailed, "{message}", "Number of messages whose publish by an outbox relay failed; they are retried."),
		rejected:   counter(MetricRejected, "{message}", "Number of messages the broker rejected for good; they are not published."),
		duplicates: counter(MetricDuplicates, "{message}", "Number of deliveries an inbox acknowledged without running the handler."),
	}
	var err error
	in.lag, err = m.Float64Histogram(MetricLag, metric.WithUnit("s"),
		metric.WithDescription("Time from storing a message in the outbox to the end of its publish."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
	errs = append(errs, err)
	in.pending, err = m.Int64Gauge(MetricPending, metric.WithUnit("{row}"),
		metric.WithDescription("Number of outbox rows waiting to be published."))
	errs = append(errs, err)
	in.pendingAge, err = m.Float64Gauge(MetricPendingAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest outbox row waiting to be published."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		otel.Handle(err)
	}
	return outbox.Observer{OnRelayed: in.onRelayed, OnPending: in.onPending, OnDuplicate: in.onDuplicate}
}

type instruments struct {
	attrs                                   []attribute.KeyValue
	published, failed, rejected, duplicates metric.Int64Counter
	lag                                     metric.Float64Histogram
	pending                                 metric.Int64Gauge
	pendingAge                              metric.Float64Gauge
}

func (in *instruments) with(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(append(kv, in.attrs...)...)
}

func (in *instruments) onRelayed(ctx context.Context, r outbox.Relayed) {
	topic := semconv.MessagingDestinationName(r.Topic)
	switch r.Outcome {
	case outbox.Published:
		in.published.Add(ctx, 1, in.with(topic))
		in.lag.Record(ctx, r.Lag.Seconds(), in.with(topic))
	case outbox.Failed:
		in.failed.Add(ctx, 1, in.with(topic, semconv.ErrorType(r.Err)))
	case outbox.Rejected:
		in.rejected.Add(ctx, 1, in.with(topic, semconv.ErrorType(r.Err)))
	}
}

func (in *instruments) onPending(ctx context.Context, p outbox.Pending) {
	in.pending.Record(ctx, p.Rows, in.with())
	in.pendingAge.Record(ctx, p.OldestAge.Seconds(), in.with())
}

func (in *instruments) onDuplicate(ctx context.Context, group string, _ *pubsub.Message) {
	in.duplicates.Add(ctx, 1, in.with(semconv.MessagingConsumerGroupName(group)))
}
