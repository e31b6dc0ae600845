package otelpubsub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/otelpubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// logBuffer is a concurrency-safe JSON log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestLogs runs a retry, a panic and a dead letter, logging at Debug: the
// wrapper's lines carry topic, group, message id and trace ids, the delivery
// loop's lines go to the same logger, and neither they nor the error of an
// Open with credentials carry the password.
func TestLogs(t *testing.T) {
	const password = "s3cr3t-Pa55"
	ctx := context.Background()
	_, err := transport.Open(ctx, "mem://alice:"+password+"@otelpubsub-logs")
	require.Error(t, err, "mem:// takes no credentials")
	assert.NotContains(t, err.Error(), password)
	inner, err := transport.Open(ctx, "mem://otelpubsub-logs")
	require.NoError(t, err)
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tel := newTelemetry(t)
	b := otelpubsub.Wrap(inner, tel.options(otelpubsub.WithLogger(logger))...)
	t.Cleanup(func() { _ = b.Close() })

	done := make(chan struct{})
	_, err = b.Subscribe(ctx, "orders", "billing", func(_ context.Context, m *pubsub.Message) error {
		switch m.Attempt {
		case 1:
			return errors.New("timeout")
		case 2:
			panic("bug")
		}
		defer close(done)
		return pubsub.Permanent(errors.New("malformed"))
	}, pubsub.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "m-1"}))
	<-done
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "message dead-lettered") },
		waitFor, 5*time.Millisecond, "the delivery loop logs to the wrapper's logger")
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "otelpubsub: handled") == 3 },
		waitFor, 5*time.Millisecond)

	var published, handled, panicked int
	for _, l := range logs.lines(t) {
		msg, _ := l["msg"].(string)
		switch msg {
		case "otelpubsub: published":
			published++
			assert.Equal(t, "orders", l["topic"])
			assert.Equal(t, "m-1", l["message_id"])
			assert.NotEmpty(t, l["trace_id"])
		case "pubsub: handler panicked":
			panicked++
			assert.Equal(t, "ERROR", l["level"])
			assert.Equal(t, "bug", l["panic"])
			assert.Contains(t, l["stack"], "runtime/debug.Stack")
			assert.Equal(t, "orders", l["topic"])
			assert.Equal(t, "billing", l["group"])
			assert.Equal(t, "m-1", l["message_id"])
		case "otelpubsub: handled":
			handled++
			if l["attempt"] == float64(2) {
				assert.Equal(t, "bug", l["panic"])
			}
			assert.Equal(t, "orders", l["topic"])
			assert.Equal(t, "billing", l["group"])
			assert.Equal(t, "m-1", l["message_id"])
			assert.NotEmpty(t, l["trace_id"])
			assert.NotEmpty(t, l["span_id"])
			assert.NotEmpty(t, l["outcome"])
		}
	}
	assert.Equal(t, 1, published)
	assert.Equal(t, 3, handled, "attempts 1, 2 (the panic) and 3")
	assert.Equal(t, 1, panicked, "attempt 2, logged once, by the delivery loop")
	assert.NotContains(t, logs.String(), password)
}
