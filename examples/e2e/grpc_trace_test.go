package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/examples/proto/exportpb"
	"github.com/switchyard-go/switchyard/examples/transactions"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
)

const checkMethod = "switchyard.examples.auth.v1.AuthService/Check"

// TestTraceAcrossGRPC: one trace goes from an HTTP request through the
// synchronous gRPC auth check to the broker and the exporter: POST
// /api/Export's server span is the parent of the gRPC client span of
// AuthService/Check (whose server span, in the auth service, is its child)
// and of the send span of export.requested, whose process span in the
// exporter group is the parent of the exporter's sends of export.progress
// and export.completed. The same holds from a gRPC StartExport call. The
// spans go to an SDK TracerProvider: given to otelpubsub and to the gRPC
// servers and clients, and set as the global one for the HTTP servers
// (restored after).
func TestTraceAcrossGRPC(t *testing.T) {
	forMemAndAMQP(t, func(t *testing.T, e *env) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		prev := otel.GetTracerProvider()
		otel.SetTracerProvider(tp)
		t.Cleanup(func() { otel.SetTracerProvider(prev) })
		e.opts = []pubsub.BrokerOption{otelpubsub.Instrument(otelpubsub.WithTracerProvider(tp),
			otelpubsub.WithPropagator(propagation.TraceContext{}), otelpubsub.WithLogger(e.log))}
		s := startGRPCStack(t, e, grpcConfig{exporters: 1, tp: tp}, nil)
		tracer := tp.Tracer("e2e")

		// HTTP.
		ctx, caller := tracer.Start(context.Background(), "caller", trace.WithSpanKind(trace.SpanKindClient))
		b, err := json.Marshal(transactions.ExportRequest{StartDate: "2025-02-01", EndDate: "2025-02-28"})
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.api+"/api/Export", bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(transactions.UserHeader, "ada")
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var acc transactions.Accepted
		require.NoError(t, jsonDecode(resp, &acc))
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		caller.End()
		s.waitStatus(t, acc.RID, events.StatusCompleted, 20*time.Second)
		tree := waitTrace(t, rec, caller.SpanContext().TraceID(), e.ns)
		t.Logf("trace of POST /api/Export:\n%s", tree.String())
		httpSpan := tree.one(t, "POST /api/Export", trace.SpanKindServer, caller.SpanContext().SpanID())
		tree.check(t, httpSpan, e.ns)

		// gRPC.
		ctx, caller = tracer.Start(as(context.Background(), "ada"), "grpc caller", trace.WithSpanKind(trace.SpanKindInternal))
		client := exportpb.NewExportServiceClient(dial(t, s.grpcAddr, tp))
		ticket, err := client.StartExport(ctx, &exportpb.ExportRequest{StartDate: "2025-02-01", EndDate: "2025-02-28"})
		require.NoError(t, err)
		caller.End()
		s.waitStatus(t, ticket.GetRid(), events.StatusCompleted, 20*time.Second)
		tree = waitTrace(t, rec, caller.SpanContext().TraceID(), e.ns)
		t.Logf("trace of gRPC StartExport:\n%s", tree.String())
		start := tree.one(t, "switchyard.examples.export.v1.ExportService/StartExport", trace.SpanKindClient, caller.SpanContext().SpanID())
		server := tree.one(t, "switchyard.examples.export.v1.ExportService/StartExport", trace.SpanKindServer, start.SpanContext().SpanID())
		tree.check(t, server, e.ns)
	})
}

// spanTree is the ended spans of one trace.
type spanTree []sdktrace.ReadOnlySpan

// waitTrace waits until the trace holds the export's last span (the send of
// export.completed) and returns its spans.
func waitTrace(t *testing.T, rec *tracetest.SpanRecorder, id trace.TraceID, ns events.Namespace) spanTree {
	t.Helper()
	var tree spanTree
	waitFor(t, 20*time.Second, "the spans of trace "+id.String(), func() error {
		tree = nil
		done := false
		for _, sp := range rec.Ended() {
			if sp.SpanContext().TraceID() == id {
				tree = append(tree, sp)
				done = done || sp.Name() == "send "+ns.Topic(events.ExportCompletedTopic)
			}
		}
		if !done {
			return fmt.Errorf("%d spans, no send of export.completed yet", len(tree))
		}
		return nil
	})
	return tree
}

// one returns the one span named name of kind whose parent is parent.
func (tr spanTree) one(t *testing.T, name string, kind trace.SpanKind, parent trace.SpanID) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, sp := range tr {
		if sp.Name() == name && sp.SpanKind() == kind && sp.Parent().SpanID() == parent {
			found = append(found, sp)
		}
	}
	require.Len(t, found, 1, "one %s span %q under %s in\n%s", kind, name, parent, tr.String())
	return found[0]
}

// check asserts the export's spans under root, the span of the API that
// took the request: the auth check over gRPC, the send of export.requested,
// and the exporter's process span with its sends.
func (tr spanTree) check(t *testing.T, root sdktrace.ReadOnlySpan, ns events.Namespace) {
	t.Helper()
	id := root.SpanContext().SpanID()
	check := tr.one(t, checkMethod, trace.SpanKindClient, id)
	authSrv := tr.one(t, checkMethod, trace.SpanKindServer, check.SpanContext().SpanID())
	assert.True(t, authSrv.Parent().IsRemote(), "the auth service continued the trace from the call's metadata")
	assert.True(t, check.EndTime().Before(tr.one(t, "send "+ns.Topic(events.ExportRequestedTopic), trace.SpanKindProducer, id).StartTime()),
		"the check ended before anything was published")
	// The request is stored in the outbox under a send span of its own; the
	// relay's send, later, continues the trace from the stored metadata.
	stored := tr.one(t, "send "+ns.Topic(events.ExportRequestedTopic), trace.SpanKindProducer, id)
	send := tr.one(t, "send "+ns.Topic(events.ExportRequestedTopic), trace.SpanKindProducer, stored.SpanContext().SpanID())
	process := tr.one(t, "process "+ns.Topic(events.ExportRequestedTopic), trace.SpanKindConsumer, send.SpanContext().SpanID())
	assert.Equal(t, events.GroupExporter, attr(process, "messaging.consumer.group.name"))
	tr.one(t, "send "+ns.Topic(events.ExportCompletedTopic), trace.SpanKindProducer, process.SpanContext().SpanID())
	var progress int
	for _, sp := range tr {
		if sp.Name() == "send "+ns.Topic(events.ExportProgressTopic) && sp.Parent().SpanID() == process.SpanContext().SpanID() {
			progress++
		}
	}
	assert.Positive(t, progress, "the exporter's progress events are in the trace")
}

// String draws the trace as a tree: name, kind, and the parent link.
func (tr spanTree) String() string {
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	ids := map[trace.SpanID]bool{}
	for _, sp := range tr {
		ids[sp.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, sp := range tr {
		if ids[sp.Parent().SpanID()] {
			children[sp.Parent().SpanID()] = append(children[sp.Parent().SpanID()], sp)
		} else {
			roots = append(roots, sp)
		}
	}
	var b strings.Builder
	var draw func(sp sdktrace.ReadOnlySpan, depth int)
	draw = func(sp sdktrace.ReadOnlySpan, depth int) {
		link := "parent " + sp.Parent().SpanID().String()
		if sp.Parent().IsRemote() {
			link += " (remote)"
		}
		group := attr(sp, "messaging.consumer.group.name")
		if group != "" {
			group = " group=" + group
		}
		fmt.Fprintf(&b, "%s%s [%s] span %s, %s%s\n", strings.Repeat("  ", depth), sp.Name(), sp.SpanKind(), sp.SpanContext().SpanID(), link, group)
		kids := children[sp.SpanContext().SpanID()]
		sort.Slice(kids, func(i, j int) bool { return kids[i].StartTime().Before(kids[j].StartTime()) })
		for _, k := range kids {
			draw(k, depth+1)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].StartTime().Before(roots[j].StartTime()) })
	for _, r := range roots {
		draw(r, 0)
	}
	return b.String()
}
