package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/examples/internal/httpx"
)

// TestTraced: without any global OpenTelemetry setup, a request's
// traceparent becomes its context's span context (W3C Trace Context by
// default), so that what the handler publishes continues the caller's
// trace; probes and scrapes are passed through untouched.
func TestTraced(t *testing.T) {
	assert.Equal(t, []string{"traceparent", "tracestate"}, httpx.Propagator.Fields())
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var got trace.SpanContext
	h := httpx.Traced(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = trace.SpanContextFromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	for path, traced := range map[string]bool{"/api/activity": true, "/healthz": false, "/readyz": false, "/metrics": false} {
		got = trace.SpanContext{}
		req := httptest.NewRequest(http.MethodPost, path, nil)
		req.Header.Set("traceparent", traceparent)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusNoContent, rec.Code, path)
		if !traced {
			assert.False(t, got.IsValid(), "%s is not traced", path)
			continue
		}
		assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", got.TraceID().String(), path)
		assert.Equal(t, "00f067aa0ba902b7", got.SpanID().String(), "%s: no TracerProvider, so the caller's span is the context's", path)
		assert.True(t, got.IsSampled(), path)
	}
}
