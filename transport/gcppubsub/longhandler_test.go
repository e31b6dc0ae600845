//go:build reliability

package gcppubsub_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// TestLongHandler is issue 15's case 4 on the Pub/Sub emulator (pstest,
// over real gRPC): handlers that run three times the subscription's ack
// deadline (10s, the least Pub/Sub allows) keep their messages, because
// the client extends their leases (see "Leases" in the package
// documentation): each message is handled exactly once, with Attempt 1,
// and pstest counts one delivery and one ack for each. About 35s:
//
//	go test -race -tags reliability -run TestLongHandler -v ./transport/gcppubsub
func TestLongHandler(t *testing.T) {
	const (
		messages = 3
		deadline = gcppubsub.DefaultAckDeadline
		runFor   = 3 * deadline
	)
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{AckDeadline: deadline})
	ctx := context.Background()

	type entry struct {
		attempt int
		at      time.Time
	}
	var mu sync.Mutex
	entries := map[string][]entry{}
	finished := make(chan time.Duration, messages)
	sub, err := b.Subscribe(ctx, "long", "g", func(ctx context.Context, m *pubsub.Message) error {
		start := time.Now()
		mu.Lock()
		entries[m.ID] = append(entries[m.ID], entry{m.Attempt, start})
		mu.Unlock()
		select {
		case <-time.After(runFor): // the long handler's work
		case <-ctx.Done():
			return ctx.Err()
		}
		finished <- time.Since(start)
		return nil
	}, pubsub.WithConcurrency(messages))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	var msgs []*pubsub.Message
	for i := range messages {
		msgs = append(msgs, &pubsub.Message{ID: fmt.Sprintf("long-%d", i), Payload: []byte("x")})
	}
	require.NoError(t, b.Publish(ctx, "long", msgs...))
	for range messages {
		select {
		case took := <-finished:
			assert.GreaterOrEqual(t, took, runFor)
		case <-time.After(runFor + 60*time.Second):
			t.Fatal("the long handlers did not finish")
		}
	}
	// Close waits for handlers and settles them: the acks of handlers that
	// returned just before it must reach Pub/Sub (they did not, about half
	// the time, before receiver.Close waited for the client to send them).
	require.NoError(t, sub.Close())

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, entries, messages)
	for id, es := range entries {
		require.Len(t, es, 1, "%s handled once while its handler ran %v (3× the ack deadline)", id, runFor)
		assert.Equal(t, 1, es[0].attempt, "%s Attempt", id)
	}
	closed := time.Now()
	acked := func() int {
		n := 0
		for _, m := range e.Messages() {
			n += m.Acks
		}
		return n
	}
	require.Eventually(t, func() bool { return acked() == messages }, 30*time.Second, 10*time.Millisecond, "pstest has every ack")
	t.Logf("pstest had every ack %v after Close returned", time.Since(closed))
	for _, m := range e.Messages() {
		assert.Equal(t, 1, m.Deliveries, "pstest deliveries of %s", m.ID)
	}
	t.Logf("%d handlers each ran %v with an ack deadline of %v: entered once each, Attempt 1, one delivery and one ack each on pstest",
		messages, runFor, deadline)
}
