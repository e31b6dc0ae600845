package rabbitmq

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

// TestCloseHandsBackPrefetchedUntouched: closing a subscription hands the
// messages it fetched ahead but never handled back untouched: the next
// member gets each of them once, with Attempt 1. (Measured before: with
// prefetch 512 and concurrency 10, closing the channel returned the 49
// prefetched messages to the quorum queue, which counted a delivery for
// each: all 49 came back with Attempt 2.)
func TestCloseHandsBackPrefetchedUntouched(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			ctx := testCtx(t)
			topic := uniqueTopic(t, "g")
			rawURL := testURL(t, "prefetch=512&queue_type="+string(qt))
			c := openTest(t, rawURL)
			require.NoError(t, c.CreateGroup(ctx, topic, "g"))
			const total, concurrency = 59, 10
			msgs := newMessages("m", total)
			require.NoError(t, c.Publish(ctx, topic, msgs...))

			first := newCollector()
			var running sync.WaitGroup
			running.Add(concurrency)
			release := make(chan struct{})
			sub := subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
				first.add(m)
				running.Done()
				<-release
				return nil
			}, pubsub.WithConcurrency(concurrency))
			running.Wait() // 10 handlers run; the other 49 messages were fetched ahead
			closed := make(chan error, 1)
			go func() { closed <- sub.Close() }()
			<-sub.Stopping()
			close(release)
			require.NoError(t, <-closed)
			handled := first.snapshot()
			require.Len(t, handled, concurrency, "a closing subscription takes no new message")

			second := newCollector()
			subscribe(t, ctx, openTest(t, rawURL), topic, "g", second.handler)
			second.waitN(t, total-concurrency)
			rest := second.quiet(300 * time.Millisecond)
			assert.Equal(t, total-concurrency, len(rest), "each once")
			attempts := map[int]int{}
			for _, g := range rest {
				attempts[g.msg.Attempt]++
			}
			assert.Equal(t, map[int]int{1: total - concurrency}, attempts, "handed back untouched: Attempt stays 1")
			var all []string
			for _, g := range append(handled, rest...) {
				all = append(all, g.msg.ID)
			}
			assert.ElementsMatch(t, ids(msgs), all, "every message handled once in all")
		})
	}
}

// TestReleaseKeepsAttempt: a message whose handler could not take it (it
// returned ErrClosed while its subscription stopped) is handed back with
// the Attempt it had, here 3 after two failures.
func TestReleaseKeepsAttempt(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			ctx := testCtx(t)
			topic := uniqueTopic(t, "g")
			rawURL := testURL(t, "queue_type="+string(qt))
			c := openTest(t, rawURL)
			third := make(chan struct{})
			var sub *pubsub.Subscription
			assigned := make(chan struct{})
			sub = subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
				if m.Attempt < 3 {
					return fmt.Errorf("attempt %d fails", m.Attempt)
				}
				close(third)
				<-assigned
				<-sub.Stopping()
				return fmt.Errorf("cannot finish: %w", pubsub.ErrClosed)
			}, pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond), pubsub.WithConcurrency(1))
			close(assigned)
			require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "thrice"}))
			select {
			case <-third:
			case <-time.After(waitTimeout):
				t.Fatal("attempt 3 never ran")
			}
			require.NoError(t, sub.Close())

			got := newCollector()
			subscribe(t, ctx, openTest(t, rawURL), topic, "g", got.handler)
			call := got.waitN(t, 1)[0]
			assert.Equal(t, "thrice", call.msg.ID)
			assert.Equal(t, 3, call.msg.Attempt, "released untouched: the Attempt it had")
			assert.Len(t, got.quiet(300*time.Millisecond), 1)
		})
	}
}

// TestSettleAfterClose: deliveries that a subscription's Close handed back
// cannot be settled any more; Receive then says ErrClosed.
func TestSettleAfterClose(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	c, b := openDriver(t, testURL(t, ""))
	require.NoError(t, c.CreateGroup(ctx, topic, "g"))
	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"}))
	s, err := b.Subscribe(ctx, topic, "g", driverConfig(2))
	require.NoError(t, err)
	d1, err := s.Receive(ctx)
	require.NoError(t, err)
	d2, err := s.Receive(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a", "b"}, []string{d1.Message().ID, d2.Message().ID})
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	assert.ErrorIs(t, d1.Ack(ctx), pubsub.ErrClosed)
	assert.ErrorIs(t, d2.Retry(ctx, time.Millisecond, 2), pubsub.ErrClosed)
	assert.ErrorIs(t, d2.Release(ctx), pubsub.ErrClosed)
	assert.ErrorIs(t, d2.DeadLetter(ctx, d2.Message()), pubsub.ErrClosed)
	_, err = s.Receive(ctx)
	assert.ErrorIs(t, err, pubsub.ErrClosed)

	again, err := b.Subscribe(ctx, topic, "g", driverConfig(2))
	require.NoError(t, err)
	defer again.Close()
	var back []string
	for range 2 {
		d, err := again.Receive(ctx)
		require.NoError(t, err)
		m := d.Message()
		back = append(back, m.ID)
		assert.Equal(t, 1, m.Attempt, "handed back untouched")
		require.NoError(t, d.Ack(ctx))
	}
	assert.ElementsMatch(t, []string{"a", "b"}, back)
}
