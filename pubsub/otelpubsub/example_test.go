package otelpubsub_test

import (
	"context"
	"fmt"
	"log"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// Wrap a broker so that the trace of a request continues in the handlers of
// the messages it publishes. Applications usually install their providers
// globally (otel.SetTracerProvider) and call Wrap without options.
func Example() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(ctx) }()

	inner, err := transport.Open(ctx, "mem://otelpubsub-example")
	if err != nil {
		log.Fatal(err)
	}
	b := otelpubsub.Wrap(inner, otelpubsub.WithTracerProvider(tp))
	defer func() { _ = b.Close() }()

	handled := make(chan trace.SpanContext, 1)
	_, err = b.Subscribe(ctx, "orders", "billing", func(ctx context.Context, m *pubsub.Message) error {
		fmt.Printf("handling %s, traceparent in metadata: %t\n", m.ID, m.Metadata["traceparent"] != "")
		handled <- trace.SpanContextFromContext(ctx)
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
	handler := <-handled
	fmt.Println("handler in the request's trace:", handler.TraceID() == request.SpanContext().TraceID())

	for len(spans.Ended()) < 3 { // the process span ends just after the handler returns
		time.Sleep(time.Millisecond)
	}
	byID := map[trace.SpanID]string{}
	for _, s := range spans.Ended() {
		byID[s.SpanContext().SpanID()] = s.Name()
	}
	for _, kind := range []trace.SpanKind{trace.SpanKindProducer, trace.SpanKindConsumer} {
		for _, s := range spans.Ended() {
			if s.SpanKind() == kind {
				fmt.Printf("%s (%s), child of %q\n", s.Name(), kind, byID[s.Parent().SpanID()])
			}
		}
	}
	// Output:
	// handling order-1, traceparent in metadata: true
	// handler in the request's trace: true
	// send orders (producer), child of "POST /orders"
	// process orders (consumer), child of "send orders"
}
