package otelpubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// logBuffer is a concurrency-safe JSON log sink.
type logBuffer struct{ testlog.Buffer }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// messages returns the level and text of each line.
func messages(lines []map[string]any) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l["level"].(string)+" "+l["msg"].(string))
	}
	return out
}

// TestLogs runs a retry, a panic and a dead letter at Debug: the
// instrumentation's own lines go to otelpubsub.WithLogger's logger, with
// topic, group, message id, attempt, outcome and trace ids; the delivery
// loop's lines go to pubsub.WithLogger's, and neither gets the other's.
func TestLogs(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	own, loop := &logBuffer{}, &logBuffer{}
	b, err := memory.New(memory.Config{MaxMessageBytes: 100},
		tel.instrument(otelpubsub.WithLogger(own.logger())), pubsub.WithLogger(loop.logger()))
	require.NoError(t, err)
	defer func() { _ = b.Close() }()

	done := newSettlements()
	_, err = b.Subscribe(ctx, "orders", "billing", func(_ context.Context, m *pubsub.Message) error {
		switch m.Attempt {
		case 1:
			return errors.New("timeout")
		case 2:
			panic("bug")
		}
		return pubsub.Permanent(errors.New("malformed"))
	}, fast, done.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "m-1"}))
	assert.Equal(t, map[string][]string{"m-1": {"retried", "retried", "dead_lettered"}}, done.take(t, 3))
	require.ErrorIs(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "big", Payload: make([]byte, 200)}), pubsub.ErrMessageTooLarge)

	// The published line is written when Publish returns, which may be after
	// the first delivery was settled: group the lines by text.
	byMsg := map[string][]map[string]any{}
	for _, l := range own.lines(t) {
		assert.Equal(t, "DEBUG", l["level"])
		byMsg[l["msg"].(string)] = append(byMsg[l["msg"].(string)], l)
	}
	require.Len(t, byMsg["otelpubsub: published"], 1)
	require.Len(t, byMsg["otelpubsub: settled"], 3)
	require.Len(t, byMsg["otelpubsub: publish failed"], 1)
	require.Len(t, byMsg, 3, "no other lines")
	sends := tel.ended(trace.SpanKindProducer)
	procs := tel.ended(trace.SpanKindConsumer)
	require.Len(t, sends, 2)
	require.Len(t, procs, 3)

	pub := byMsg["otelpubsub: published"][0]
	assert.Equal(t, "orders", pub["topic"])
	assert.Equal(t, "m-1", pub["message_id"])
	assert.Equal(t, sends[0].SpanContext().TraceID().String(), pub["trace_id"])
	assert.Equal(t, sends[0].SpanContext().SpanID().String(), pub["span_id"])
	for i, want := range []struct {
		outcome, err, panic string
	}{
		{"retried", "timeout", ""},
		{"retried", "pubsub: handler panicked: bug", "bug"},
		{"dead_lettered", "malformed", ""},
	} {
		l := byMsg["otelpubsub: settled"][i]
		assert.Equal(t, "orders", l["topic"])
		assert.Equal(t, "billing", l["group"])
		assert.Equal(t, "m-1", l["message_id"])
		assert.Equal(t, float64(i+1), l["attempt"])
		assert.Equal(t, want.outcome, l["outcome"])
		assert.Equal(t, want.err, l["err"])
		assert.Contains(t, l, "duration")
		assert.Equal(t, procs[i].SpanContext().TraceID().String(), l["trace_id"])
		assert.Equal(t, procs[i].SpanContext().SpanID().String(), l["span_id"])
		if want.panic != "" {
			assert.Equal(t, want.panic, l["panic"])
		} else {
			assert.NotContains(t, l, "panic")
		}
	}
	failed := byMsg["otelpubsub: publish failed"][0]
	assert.Equal(t, "big", failed["message_id"])
	assert.Contains(t, failed["err"], "message too large")
	assert.Equal(t, sends[1].SpanContext().TraceID().String(), failed["trace_id"])

	loopLines := loop.lines(t)
	assert.Equal(t, []string{
		"DEBUG pubsub: handler failed; will retry",
		"WARN pubsub: handler panicked; will retry",
		"WARN pubsub: message dead-lettered",
	}, messages(loopLines), "the loop's lines, and only those, go to pubsub.WithLogger's logger")
}

// TestNilLoggerDiscards: WithLogger(nil) makes no lines and no trouble.
func TestNilLoggerDiscards(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	loop := &logBuffer{}
	b, err := memory.New(memory.Config{}, tel.instrument(otelpubsub.WithLogger(nil)), pubsub.WithLogger(loop.logger()))
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	done := newSettlements()
	_, err = b.Subscribe(ctx, "orders", "g", func(context.Context, *pubsub.Message) error { return nil }, done.observer())
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "a"}))
	assert.Equal(t, "acked", done.next(t).Outcome.String())
	assert.Empty(t, loop.lines(t), "nothing of the instrumentation's reaches the loop's logger")
}
