package nats

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestOutage cuts the connection and refuses new ones for a while:
// Publish waits and returns nil only once the server stored the
// messages; Ping reports the outage; the subscription resumes by itself;
// every message arrives; the logs tell the story without the password.
func TestOutage(t *testing.T) {
	base := testURL(t, "")
	s, err := parseServers(strings.SplitN(base, "?", 2)[0])
	require.NoError(t, err)
	p := newProxy(t, s.hosts[0])
	raw := "nats://alice:s3cret@" + p.Addr() + "?" + strings.SplitN(base, "?", 2)[1]
	var logs testlog.Buffer
	b := openTest(t, raw, pubsub.WithLogger(logTo(&logs)))
	ctx := context.Background()

	var mu sync.Mutex
	got := map[string]int{}
	arrived := make(chan struct{}, 100)
	_, err = b.Subscribe(ctx, "outage", "g", func(_ context.Context, m *pubsub.Message) error {
		mu.Lock()
		got[m.ID]++
		mu.Unlock()
		arrived <- struct{}{}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "outage", &pubsub.Message{ID: "before"}))
	recv(t, arrived, 10*time.Second)

	p.SetDown(true)
	p.Cut()
	ping := func() error {
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		return b.Ping(ctx)
	}
	require.Eventually(t, func() bool { return ping() != nil }, 5*time.Second, 10*time.Millisecond, "Ping reports the outage")
	published := make(chan error, 1)
	go func() {
		var msgs []*pubsub.Message
		for i := range 10 {
			msgs = append(msgs, &pubsub.Message{ID: fmt.Sprintf("during-%d", i)})
		}
		published <- b.Publish(ctx, "outage", msgs...)
	}()
	select {
	case err := <-published:
		t.Fatalf("Publish returned %v while the server was unreachable", err)
	case <-time.After(time.Second):
	}
	p.SetDown(false)
	require.NoError(t, recv(t, published, 30*time.Second), "Publish succeeds once the connection is back")
	require.NoError(t, b.Publish(ctx, "outage", &pubsub.Message{ID: "after"}))
	for range 11 {
		recv(t, arrived, 15*time.Second)
	}
	require.NoError(t, b.Ping(ctx))
	mu.Lock()
	assert.Len(t, got, 12, "every message: %v", got)
	for id, n := range got {
		assert.Equal(t, 1, n, "%s once", id)
	}
	mu.Unlock()
	out := logs.String()
	assert.Contains(t, out, "nats: connection lost; reconnecting")
	assert.Contains(t, out, "nats: connection restored")
	assert.NotContains(t, out, "s3cret")
}
