package otelpubsub

import (
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures Instrument.
type Option func(*config)

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	prop           propagation.TextMapPropagator // nil: the global one, see propagator()
	system         string
	logger         *slog.Logger
}

// WithTracerProvider sets the provider of the tracer that makes the send and
// process spans. Default otel.GetTracerProvider(), which makes no spans
// until the application installs one with otel.SetTracerProvider (a provider
// installed after Instrument is picked up too). nil means the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// WithMeterProvider sets the provider of the meter that makes the
// instruments listed in the package documentation. Default
// otel.GetMeterProvider(), which records nothing until the application
// installs one with otel.SetMeterProvider. nil means the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithPropagator sets how the trace context is written to and read from
// Message.Metadata. Default: the global propagator
// (otel.GetTextMapPropagator()), looked up on every call, unless it carries
// no fields (the application never called otel.SetTextMapPropagator), in
// which case W3C Trace Context (propagation.TraceContext, metadata keys
// "traceparent" and "tracestate") is used, so that an instrumented
// broker propagates traces without global setup. nil means the default.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithSystem sets the messaging.system attribute of spans and metrics, such
// as "rabbitmq", "gcp_pubsub", "nats" or "memory" (SystemOf gives it for a
// broker URL). Default "switchyard". An empty string means the default.
func WithSystem(system string) Option {
	return func(c *config) { c.system = system }
}

// WithLogger sets the logger of the instrumentation's own Debug lines: one
// per published message ("otelpubsub: published", or "otelpubsub: publish
// failed" with err), with topic, message_id, trace_id and span_id; and one
// per delivery's final outcome ("otelpubsub: settled"), with topic, group,
// message_id, attempt, outcome, duration, trace_id, span_id and, when there
// was one, err, panic and settle_err. The broker's and the delivery loop's
// lines go to the logger given with pubsub.WithLogger. Default
// slog.Default() as it is at each line; nil discards. No line carries a URL
// or a credential.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
	}
}

// newConfig applies opts over the defaults.
func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.system == "" {
		c.system = "switchyard"
	}
	return c
}

// log returns the instrumentation's logger: the one set by WithLogger, else
// slog.Default() as it is now.
func (c *config) log() *slog.Logger {
	if c.logger != nil {
		return c.logger
	}
	return slog.Default()
}

// propagator returns the propagator to use for one call (see WithPropagator).
func (c *config) propagator() propagation.TextMapPropagator {
	if c.prop != nil {
		return c.prop
	}
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return propagation.TraceContext{}
}

// SystemOf returns the messaging.system value for a broker URL's scheme, as
// transport.Open reads it: "memory" for mem://, "rabbitmq" for amqp:// and
// amqps://, "gcp_pubsub" for gcppubsub://, "nats" for nats:// and tls://,
// and "switchyard" for anything else.
func SystemOf(rawURL string) string {
	scheme, _, _ := strings.Cut(rawURL, "://")
	switch scheme {
	case "mem":
		return "memory"
	case "amqp", "amqps":
		return "rabbitmq"
	case "gcppubsub":
		return "gcp_pubsub"
	case "nats", "tls":
		return "nats"
	}
	return "switchyard"
}
