package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
)

// TestTraceFollowsRequest: a POST /api/activity made within a span of the
// caller's continues that trace across the broker: the send span is a child
// of the caller's span, the process spans of audit, analytics and notifier
// (the notifier's first webhook call fails, so it has two) are children of
// the send span, and the welcome webhook the sink receives carries the
// notifier's HTTP client span in its traceparent. Spans go to an SDK
// TracerProvider given to otelpubsub.Instrument, W3C Trace Context both in HTTP
// headers and in message metadata; no global is set.
func TestTraceFollowsRequest(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *env) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		e.opts = []pubsub.BrokerOption{otelpubsub.Instrument(otelpubsub.WithTracerProvider(tp),
			otelpubsub.WithPropagator(propagation.TraceContext{}), otelpubsub.WithLogger(e.log))}
		s := startActivityStack(t, e)

		ctx, reqSpan := tp.Tracer("e2e").Start(context.Background(), "caller", trace.WithSpanKind(trace.SpanKindClient))
		b, err := json.Marshal(events.UserActivity{UserID: "tracy", Type: events.SignedUp})
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.activity+"/api/activity", bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var accepted struct{ ID string }
		require.NoError(t, jsonDecode(resp, &accepted))
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		reqSpan.End()
		caller := reqSpan.SpanContext()
		id := accepted.ID

		topic := e.ns.UserActivity().Name()
		wantProcess := map[string]int{events.GroupAudit: 1, events.GroupAnalytics: 1, events.GroupNotifier: 2}
		var (
			send    sdktrace.ReadOnlySpan
			process map[string][]sdktrace.ReadOnlySpan
			hooks   []sdktrace.ReadOnlySpan // the notifier's HTTP client spans
		)
		waitFor(t, 20*time.Second, "the spans of message "+id, func() error {
			send, process, hooks = nil, map[string][]sdktrace.ReadOnlySpan{}, nil
			ended := rec.Ended()
			for _, sp := range ended {
				switch {
				case sp.Name() == "send "+topic && attr(sp, "messaging.message.id") == id:
					send = sp
				case sp.Name() == "process "+topic && attr(sp, "messaging.message.id") == id:
					g := attr(sp, "messaging.consumer.group.name")
					process[g] = append(process[g], sp)
				}
			}
			for _, sp := range ended {
				for _, p := range process[events.GroupNotifier] {
					if sp.SpanKind() == trace.SpanKindClient && sp.Parent().SpanID() == p.SpanContext().SpanID() {
						hooks = append(hooks, sp)
					}
				}
			}
			if send == nil {
				return fmt.Errorf("no send span among %d", len(ended))
			}
			for g, n := range wantProcess {
				if len(process[g]) != n {
					return fmt.Errorf("%d process spans of %s, want %d", len(process[g]), g, n)
				}
			}
			if len(hooks) != 2 {
				return fmt.Errorf("%d webhook client spans, want 2", len(hooks))
			}
			return nil
		})

		// caller → send
		assert.Equal(t, trace.SpanKindProducer, send.SpanKind())
		assert.Equal(t, caller.TraceID(), send.SpanContext().TraceID(), "the send span is in the caller's trace")
		assert.Equal(t, caller.SpanID(), send.Parent().SpanID(), "the send span is a child of the caller's span")
		assert.True(t, send.Parent().IsRemote(), "the caller's span came in the traceparent header")
		// send → process, in every group, each attempt
		for g, spans := range process {
			for i, p := range spans {
				assert.Equal(t, trace.SpanKindConsumer, p.SpanKind(), "%s", g)
				assert.Equal(t, caller.TraceID(), p.SpanContext().TraceID(), "%s attempt %d is in the caller's trace", g, i+1)
				assert.Equal(t, send.SpanContext().SpanID(), p.Parent().SpanID(), "%s attempt %d is a child of the send span", g, i+1)
				assert.True(t, p.Parent().IsRemote(), "%s: the send span came in the message metadata", g)
			}
		}
		// process → webhook call → sink
		var calls []string
		for _, c := range s.hooks.Calls() {
			if c.Path == "/hooks/welcome" && c.IdempotencyKey == id {
				calls = append(calls, c.TraceParent)
			}
		}
		require.Len(t, calls, 1, "the sink accepted the second call only (fail=1)")
		var second trace.SpanID // the notifier's process span of attempt 2
		for _, p := range process[events.GroupNotifier] {
			if attr(p, otelpubsub.AttemptKey) == "2" {
				second = p.SpanContext().SpanID()
			}
		}
		var want string
		for _, h := range hooks {
			if h.Parent().SpanID() == second {
				want = fmt.Sprintf("00-%s-%s-01", caller.TraceID(), h.SpanContext().SpanID())
			}
		}
		assert.Equal(t, want, calls[0], "the accepted webhook call carries the client span of the notifier's second attempt")
	})
}

// attr returns the string value of sp's attribute key, empty if unset.
func attr(sp sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range sp.Attributes() {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
