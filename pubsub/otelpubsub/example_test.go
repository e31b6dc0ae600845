package otelpubsub_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"slices"

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

// Instrument a broker so that the trace of a request continues in the
// handlers of the messages it publishes, and the loop's outcomes are
// counted. Applications usually install their providers globally
// (otel.SetTracerProvider, otel.SetMeterProvider) and give only
// WithSystem and WithLogger.
func ExampleInstrument() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	b, err := memory.New(memory.Config{}, otelpubsub.Instrument(
		otelpubsub.WithTracerProvider(tp),
		otelpubsub.WithMeterProvider(mp),
		otelpubsub.WithSystem(otelpubsub.SystemOf("mem://")),
	))
	if err != nil {
		log.Fatal(err)
	}
	handled := make(chan struct{}, 1)
	_, err = b.Subscribe(ctx, "orders", "billing", func(ctx context.Context, m *pubsub.Message) error {
		fmt.Printf("handling %s, traceparent in metadata: %t\n", m.ID, m.Metadata["traceparent"] != "")
		handled <- struct{}{}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	reqCtx, request := tp.Tracer("example").Start(ctx, "POST /orders")
	if err := b.Publish(reqCtx, "orders", &pubsub.Message{ID: "order-1", Payload: []byte(`{"total":42}`)}); err != nil {
		log.Fatal(err)
	}
	request.End()
	<-handled
	// Close drains the subscription: once it returns, the handler's outcome
	// is recorded.
	if err := b.Close(); err != nil {
		log.Fatal(err)
	}

	names := map[trace.SpanID]string{}
	for _, s := range spans.Ended() {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	ended := spans.Ended()
	// The process span may end before the send span: print in a fixed order.
	slices.SortFunc(ended, func(a, b sdktrace.ReadOnlySpan) int { return cmp.Compare(b.Name(), a.Name()) })
	for _, s := range ended {
		if s.SpanKind() == trace.SpanKindInternal {
			continue
		}
		fmt.Printf("%s (%s), child of %q", s.Name(), s.SpanKind(), names[s.Parent().SpanID()])
		if set := attribute.NewSet(s.Attributes()...); set.HasValue(otelpubsub.OutcomeKey) {
			v, _ := set.Value(otelpubsub.OutcomeKey)
			fmt.Printf(", %s", v.Emit())
		}
		fmt.Println()
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == otelpubsub.MetricAcked {
			fmt.Println(m.Name, sum.DataPoints[0].Value)
		}
	}
	// Output:
	// handling order-1, traceparent in metadata: true
	// send orders (producer), child of "POST /orders"
	// process orders (consumer), child of "send orders", acked
	// switchyard.messages.acked 1
}
