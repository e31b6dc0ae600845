package otelpubsub_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// waitFor bounds every wait for something that must happen; tests never
// sleep to synchronise.
const waitFor = 5 * time.Second

// quietPeriod is how long a test watches for anything MORE to happen.
const quietPeriod = 50 * time.Millisecond

// fast is a backoff that keeps retries and parked dead letters quick.
var fast = pubsub.WithBackoff(time.Millisecond, 2*time.Millisecond)

var system = semconv.MessagingSystemKey.String("memory")

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

// instrument returns Instrument with tel's providers, messaging.system
// "memory" and more.
func (tel *telemetry) instrument(more ...otelpubsub.Option) pubsub.BrokerOption {
	opts := []otelpubsub.Option{otelpubsub.WithTracerProvider(tel.tp), otelpubsub.WithMeterProvider(tel.mp),
		otelpubsub.WithSystem(otelpubsub.SystemOf("mem://")), otelpubsub.WithLogger(nil)}
	return otelpubsub.Instrument(append(opts, more...)...)
}

// broker returns an instrumented memory broker configured by cfg, whose
// delivery loop logs nowhere, closed with t.
func (tel *telemetry) broker(t *testing.T, cfg memory.Config, more ...otelpubsub.Option) *pubsub.Client {
	t.Helper()
	b, err := memory.New(cfg, tel.instrument(more...), pubsub.WithLogger(nil))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// ended returns the ended spans of kind, in the order they ended.
func (tel *telemetry) ended(kind trace.SpanKind) []sdktrace.ReadOnlySpan {
	var got []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.SpanKind() == kind {
			got = append(got, s)
		}
	}
	return got
}

// collect reads every metric now.
func (tel *telemetry) collect(t *testing.T) metricsData {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	out := metricsData{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// metricsData is one collection, by instrument name.
type metricsData map[string]metricdata.Aggregation

// counters are the int64 instruments, in the order totals lists them.
var counters = []string{
	otelpubsub.MetricSent, otelpubsub.MetricConsumed,
	otelpubsub.MetricAcked, otelpubsub.MetricRetried, otelpubsub.MetricDeadLettered,
	otelpubsub.MetricReleased, otelpubsub.MetricParked, otelpubsub.MetricSettleFailed,
	otelpubsub.MetricInFlight,
}

// totals returns every instrument's total over all its points: the sums of
// the counters, and the count of points of the duration histogram. Tests
// compare it whole, so that nothing is counted twice or where it should not.
func (d metricsData) totals() map[string]int64 {
	out := map[string]int64{}
	for _, name := range counters {
		out[name] = d.sum(name)
	}
	out[otelpubsub.MetricProcessDuration] = int64(d.histCount(otelpubsub.MetricProcessDuration))
	return out
}

// totalsOf returns the totals of the given non-zero counts, every other
// instrument 0.
func totalsOf(nonZero map[string]int64) map[string]int64 {
	out := map[string]int64{otelpubsub.MetricProcessDuration: 0}
	for _, name := range counters {
		out[name] = 0
	}
	for k, v := range nonZero {
		out[k] = v
	}
	return out
}

// sum adds the points of the int64 sum name whose attributes include want.
func (d metricsData) sum(name string, want ...attribute.KeyValue) int64 {
	s, _ := d[name].(metricdata.Sum[int64])
	var n int64
	for _, p := range s.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// histCount adds the counts of the histogram name's points whose
// attributes include want.
func (d metricsData) histCount(name string, want ...attribute.KeyValue) uint64 {
	h, _ := d[name].(metricdata.Histogram[float64])
	var n uint64
	for _, p := range h.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Count
		}
	}
	return n
}

// histSum adds the sums of the histogram name's points whose attributes
// include want.
func (d metricsData) histSum(name string, want ...attribute.KeyValue) float64 {
	h, _ := d[name].(metricdata.Histogram[float64])
	var s float64
	for _, p := range h.DataPoints {
		if matches(p.Attributes, want) {
			s += p.Sum
		}
	}
	return s
}

// keys returns the attribute keys of every point of instrument name, each
// point's keys sorted and joined by commas, deduplicated and sorted.
func (d metricsData) keys(name string) []string {
	var sets []attribute.Set
	switch a := d[name].(type) {
	case metricdata.Sum[int64]:
		for _, p := range a.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range a.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	seen := map[string]bool{}
	for _, s := range sets {
		var ks []string
		for _, kv := range s.ToSlice() {
			ks = append(ks, string(kv.Key))
		}
		sort.Strings(ks)
		key := ""
		for i, k := range ks {
			if i > 0 {
				key += ","
			}
			key += k
		}
		seen[key] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
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

// where returns the attributes of a topic and group.
func where(topic, group string) []attribute.KeyValue {
	return []attribute.KeyValue{system, semconv.MessagingDestinationName(topic), semconv.MessagingConsumerGroupName(group)}
}

// with returns kvs and more in a new slice.
func with(kvs []attribute.KeyValue, more ...attribute.KeyValue) []attribute.KeyValue {
	return append(append([]attribute.KeyValue(nil), kvs...), more...)
}

// attrs returns kvs as a map, for whole comparisons with readable diffs.
func attrs(kvs ...attribute.KeyValue) map[attribute.Key]string {
	out := make(map[attribute.Key]string, len(kvs))
	for _, kv := range kvs {
		out[kv.Key] = kv.Value.Type().String() + ":" + kv.Value.Emit()
	}
	return out
}

// sendAttrs are the attributes of a send span for message id of size bytes.
func sendAttrs(topic, id string, size int, more ...attribute.KeyValue) map[attribute.Key]string {
	return attrs(append([]attribute.KeyValue{system, semconv.MessagingDestinationName(topic),
		semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("send"),
		semconv.MessagingMessageID(id), semconv.MessagingMessageBodySize(size)}, more...)...)
}

// processAttrs are the attributes of a process span.
func processAttrs(topic, group, id string, size, attempt int, outcome string, more ...attribute.KeyValue) map[attribute.Key]string {
	return attrs(append([]attribute.KeyValue{system, semconv.MessagingDestinationName(topic),
		semconv.MessagingConsumerGroupName(group),
		semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process"),
		semconv.MessagingMessageID(id), semconv.MessagingMessageBodySize(size),
		otelpubsub.AttemptKey.Int(attempt), otelpubsub.OutcomeKey.String(outcome)}, more...)...)
}

// exceptions returns the exception.message of each exception event of s.
func exceptions(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		if e.Name != "exception" {
			continue
		}
		for _, kv := range e.Attributes {
			if kv.Key == "exception.message" {
				out = append(out, kv.Value.AsString())
			}
		}
	}
	return out
}

// eventAttr returns the value of key on the first exception event of s.
func eventAttr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, e := range s.Events() {
		for _, kv := range e.Attributes {
			if kv.Key == key {
				return kv.Value.Emit()
			}
		}
	}
	return ""
}

// settlements receives what the delivery loop reports to OnSettle. Given to
// Subscribe, its observer runs after the broker's, so once a settlement is
// received here, the instrumentation has recorded it.
type settlements chan pubsub.Settlement

func newSettlements() settlements { return make(settlements, 100) }

func (c settlements) observer() pubsub.Option {
	return pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, s pubsub.Settlement) { c <- s }})
}

// next returns the next settlement.
func (c settlements) next(t *testing.T) pubsub.Settlement {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(waitFor):
		require.FailNow(t, "timed out waiting for a settlement")
		return pubsub.Settlement{}
	}
}

// take returns the next n settlements' outcomes by message ID, in order.
func (c settlements) take(t *testing.T, n int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for range n {
		s := c.next(t)
		out[s.Message.ID] = append(out[s.Message.ID], s.Outcome.String())
	}
	return out
}

// quiet asserts that nothing more is settled for a short while.
func (c settlements) quiet(t *testing.T) {
	t.Helper()
	select {
	case s := <-c:
		assert.Failf(t, "unexpected settlement", "%s of %s (attempt %d)", s.Outcome, s.Message.ID, s.Message.Attempt)
	case <-time.After(quietPeriod):
	}
}

// handlerSpans records the span context each handler call ran under.
type handlerSpans chan trace.SpanContext

func (c handlerSpans) handler(then func(*pubsub.Message) error) pubsub.Handler {
	return func(ctx context.Context, m *pubsub.Message) error {
		c <- trace.SpanContextFromContext(ctx)
		if then != nil {
			return then(m)
		}
		return nil
	}
}

func (c handlerSpans) next(t *testing.T) trace.SpanContext {
	t.Helper()
	select {
	case sc := <-c:
		return sc
	case <-time.After(waitFor):
		require.FailNow(t, "timed out waiting for a delivery")
		return trace.SpanContext{}
	}
}
