package otelpubsub

import (
	"io"
	"log/slog"
	"path"
	"reflect"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures Wrap.
type Option func(*config)

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	prop           propagation.TextMapPropagator // nil: the global one, see propagator()
	system         string
	logger         *slog.Logger
	loggerSet      bool
}

// WithTracerProvider sets the provider of the tracer that makes the send and
// process spans. Default otel.GetTracerProvider(), which makes no spans
// until the application installs one with otel.SetTracerProvider (a provider
// installed after Wrap is picked up too). nil means the default.
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
// "traceparent" and "tracestate") is used, so that a wrapped broker
// propagates traces without global setup. nil means the default.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithSystem sets the messaging.system attribute of spans and metrics, such
// as "rabbitmq", "gcp_pubsub" or "memory". Default: the system of the
// wrapped broker when it is one of this module's transports (memory,
// rabbitmq, gcppubsub, including a broker returned by transport.Open), else
// "switchyard". An empty string means the default.
func WithSystem(system string) Option {
	return func(c *config) { c.system = system }
}

// WithLogger sets the logger of the wrapper's own lines, which carry
// topic, group, message_id, attempt, trace_id and span_id attributes: one
// Debug line per published message and per handled delivery (with its
// outcome and duration), and an Error line with the stack when a handler
// panics. When set, it is also passed to every Subscribe as
// pubsub.WithLogger ahead of the caller's options, so that the delivery
// loop's lines go to the same logger (a pubsub.WithLogger among the
// caller's options still wins). Default slog.Default(), without changing the
// subscriptions' loggers; nil discards the wrapper's lines (and, passed on,
// the loop's). No line carries a URL or a credential.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		c.logger, c.loggerSet = l, true
	}
}

// newConfig applies opts over the defaults for broker inner.
func newConfig(inner any, opts []Option) config {
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
		c.system = systemOf(inner)
	}
	return c
}

// log returns the wrapper's logger: the one set by WithLogger, else
// slog.Default() as it is now.
func (c *config) log() *slog.Logger {
	if c.loggerSet {
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

// transportPrefix is the import path prefix of this module's transports.
const transportPrefix = "github.com/switchyard-go/switchyard/transport/"

// systemOf returns the messaging.system value for a broker of b's type.
func systemOf(b any) string {
	t := reflect.TypeOf(b)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || !strings.HasPrefix(t.PkgPath(), transportPrefix) {
		return "switchyard"
	}
	switch pkg := path.Base(t.PkgPath()); pkg {
	case "gcppubsub":
		return "gcp_pubsub"
	default: // "memory", "rabbitmq"
		return pkg
	}
}
