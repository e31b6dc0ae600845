package otelpubsub_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

const waitFor = 5 * time.Second

// telemetry is an SDK tracer provider recording every span and an SDK meter
// provider read on demand.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// options returns the Wrap options that use tel's providers.
func (tel *telemetry) options(more ...otelpubsub.Option) []otelpubsub.Option {
	return append([]otelpubsub.Option{otelpubsub.WithTracerProvider(tel.tp), otelpubsub.WithMeterProvider(tel.mp)}, more...)
}

// wrapMemory returns a private in-memory broker wrapped with tel's
// providers, closed with t.
func (tel *telemetry) wrapMemory(t *testing.T, more ...otelpubsub.Option) pubsub.Broker {
	t.Helper()
	mb, err := memory.New(memory.Config{})
	require.NoError(t, err)
	b := otelpubsub.Wrap(mb, tel.options(more...)...)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// ended returns the ended spans of the given kind, waiting until there are
// at least n.
func (tel *telemetry) ended(t *testing.T, kind trace.SpanKind, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, s := range tel.spans.Ended() {
			if s.SpanKind() == kind {
				got = append(got, s)
			}
		}
		return len(got) >= n
	}, waitFor, 5*time.Millisecond, "waiting for %d %v spans", n, kind)
	return got
}

// collect reads every metric now.
func (tel *telemetry) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// matches reports whether set has every attribute of want.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum adds the points of the int64 sum name whose attributes include want.
func sum(data map[string]metricdata.Aggregation, name string, want ...attribute.KeyValue) int64 {
	s, _ := data[name].(metricdata.Sum[int64])
	var n int64
	for _, p := range s.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// count adds the counts of the histogram name's points whose attributes
// include want.
func count(data map[string]metricdata.Aggregation, name string, want ...attribute.KeyValue) uint64 {
	h, _ := data[name].(metricdata.Histogram[float64])
	var n uint64
	for _, p := range h.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Count
		}
	}
	return n
}

// attr returns the value of key among kvs, and whether it is there.
func attr(kvs []attribute.KeyValue, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// spanContexts records the span context each handler call ran under.
type spanContexts chan trace.SpanContext

func (c spanContexts) handler(fail func(*pubsub.Message) error) pubsub.Handler {
	return func(ctx context.Context, m *pubsub.Message) error {
		c <- trace.SpanContextFromContext(ctx)
		if fail != nil {
			return fail(m)
		}
		return nil
	}
}

func (c spanContexts) next(t *testing.T) trace.SpanContext {
	t.Helper()
	select {
	case sc := <-c:
		return sc
	case <-time.After(waitFor):
		require.FailNow(t, "timed out waiting for a delivery")
		return trace.SpanContext{}
	}
}
