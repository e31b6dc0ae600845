//go:build reliability

package nats

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestLongHandler is issue 15's case 4 on NATS: handlers that run three
// times AckWait keep their messages, because the member reports progress
// every AckWait/3 (see "Delivery semantics" in the package documentation).
// Two members of one group share three messages with AckWait 2s; each
// handler runs 6s. A message the server gave up on would reach the other
// member (or the same) while its first handler still runs: each must be
// entered exactly once, with Attempt 1. About 10s:
//
//	go test -race -tags reliability -run TestLongHandler -v ./transport/nats
func TestLongHandler(t *testing.T) {
	const (
		messages = 3
		ackWait  = 2 * time.Second
		runFor   = 3 * ackWait
	)
	raw := testURL(t, "ack_wait="+ackWait.String())
	a, b := openTest(t, raw), openTest(t, raw)
	ctx := context.Background()
	var mu sync.Mutex
	entries := map[string][]int{} // ID -> Attempt of each entry
	finished := make(chan time.Duration, 2*messages)
	handler := func(ctx context.Context, m *pubsub.Message) error {
		start := time.Now()
		mu.Lock()
		entries[m.ID] = append(entries[m.ID], m.Attempt)
		mu.Unlock()
		select {
		case <-time.After(runFor): // the long handler's work
		case <-ctx.Done():
			return ctx.Err()
		}
		finished <- time.Since(start)
		return nil
	}
	for _, c := range []*pubsub.Client{a, b} {
		sub, err := c.Subscribe(ctx, "long", "g", handler, pubsub.WithConcurrency(messages))
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Close() })
	}
	var msgs []*pubsub.Message
	for i := range messages {
		msgs = append(msgs, &pubsub.Message{ID: fmt.Sprintf("long-%d", i)})
	}
	require.NoError(t, a.Publish(ctx, "long", msgs...))
	for range messages {
		select {
		case took := <-finished:
			assert.GreaterOrEqual(t, took, runFor)
		case <-time.After(runFor + 30*time.Second):
			t.Fatal("the long handlers did not finish")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, entries, messages)
	for id, attempts := range entries {
		assert.Equal(t, []int{1}, attempts, "%s entered once, Attempt 1, while its handler ran %v (3× AckWait)", id, runFor)
	}
	t.Logf("%d handlers each ran %v with AckWait %v on two members: %v", messages, runFor, ackWait, entries)
}
