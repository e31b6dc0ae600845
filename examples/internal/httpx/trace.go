package httpx

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// Propagator carries trace context in HTTP headers: the global propagator
// (otel.GetTextMapPropagator()) once the application set one, and W3C Trace
// Context ("traceparent", "tracestate") until then, as otelpubsub does in
// message metadata. It is looked up on every call.
var Propagator propagation.TextMapPropagator = defaultPropagator{}

type defaultPropagator struct{}

func (defaultPropagator) get() propagation.TextMapPropagator {
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return propagation.TraceContext{}
}

func (p defaultPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	p.get().Inject(ctx, c)
}

func (p defaultPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return p.get().Extract(ctx, c)
}

func (p defaultPropagator) Fields() []string { return p.get().Fields() }

// untraced are the paths of probes and scrapes, which get no spans.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Traced returns h under OpenTelemetry's HTTP server instrumentation: the
// trace context of an incoming request (Propagator) becomes the parent of
// the request's context, so that a message published with r.Context()
// continues the caller's trace, and each request gets a server span from
// the global TracerProvider (none until the application installs one with
// otel.SetTracerProvider). Probes and scrapes (/healthz, /readyz, /metrics)
// are passed through untraced. Serve applies it.
func Traced(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untraced[r.URL.Path] }))
}

// TracedTransport returns base (http.DefaultTransport when nil) under
// OpenTelemetry's HTTP client instrumentation: each request carries the
// trace context of its context in its headers (Propagator), under a client
// span from the global TracerProvider.
func TracedTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base, otelhttp.WithPropagators(Propagator))
}
