package watermillbridge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/watermillbridge"
)

// A message that watermill holds unsettled when the Subscriber closes is
// handed back untouched: Close returns nil at once (not after the drain
// timeout), the message's context is cancelled, a late Ack returns false,
// and the next member gets the message with the same Attempt, even with
// WithMaxAttempts(1).
func TestCloseHandsBackUnsettledMessages(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	settled := make(chan pubsub.Settlement, 1)
	opts := []pubsub.SubscribeOption{pubsub.WithMaxAttempts(1), pubsub.WithDrainTimeout(time.Minute), observe(settled)}
	sub := watermillbridge.NewSubscriber(b, "g", opts...)
	ch, err := sub.Subscribe(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "m1", Payload: []byte("x")}))
	held := next(t, ch)

	start := time.Now()
	require.NoError(t, sub.Close())
	assert.Less(t, time.Since(start), 10*time.Second, "Close did not wait for the drain timeout")
	assertClosed(t, ch)
	assert.ErrorIs(t, held.Context().Err(), context.Canceled, "the message's context is cancelled")
	assert.False(t, held.Ack(), "an Ack after Close does not count")
	s := next(t, settled)
	assert.Equal(t, pubsub.OutcomeReleased, s.Outcome)
	assert.Equal(t, "m1", s.Message.ID)

	again := watermillbridge.NewSubscriber(b, "g", pubsub.WithMaxAttempts(1))
	defer again.Close()
	ch2, err := again.Subscribe(ctx, "orders")
	require.NoError(t, err)
	m := next(t, ch2)
	assert.Equal(t, "m1", m.UUID)
	assert.Equal(t, "1", m.Metadata.Get(watermillbridge.MetadataAttempt), "Attempt unchanged")
	assert.True(t, m.Ack())
	dead, err := b.ListDeadLetters(ctx, "orders", "g", 0)
	require.NoError(t, err)
	assert.Empty(t, dead)
}

// An Ack or Nack given just before Close stands: Close hands back only
// what is unsettled. (TestTakeBack covers a verdict that the bridge sees
// only after the subscription started to stop.)
func TestCloseKeepsVerdictsGivenBefore(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	settled := make(chan pubsub.Settlement, 2)
	sub := watermillbridge.NewSubscriber(b, "g", pubsub.WithBackoff(time.Hour, time.Hour), observe(settled))
	ch, err := sub.Subscribe(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "acked"}, &pubsub.Message{ID: "nacked"}))
	held := map[string]*message.Message{}
	for range 2 {
		m := next(t, ch)
		held[m.UUID] = m
	}
	require.True(t, held["acked"].Ack())
	require.True(t, held["nacked"].Nack())
	require.NoError(t, sub.Close())
	got := map[string]pubsub.Outcome{}
	for range 2 {
		s := next(t, settled)
		got[s.Message.ID] = s.Outcome
	}
	assert.Equal(t, map[string]pubsub.Outcome{"acked": pubsub.OutcomeAcked, "nacked": pubsub.OutcomeRetried}, got)
}

// Cancelling Subscribe's context closes the channel and hands back what
// watermill holds, as Close does; the Subscriber stays usable.
func TestSubscribeContextEnds(t *testing.T) {
	b := newBroker(t)
	settled := make(chan pubsub.Settlement, 1)
	sub := watermillbridge.NewSubscriber(b, "g", observe(settled))
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), "orders", &pubsub.Message{ID: "m1"}))
	held := next(t, ch)
	cancel()
	s := next(t, settled)
	assert.Equal(t, pubsub.OutcomeReleased, s.Outcome)
	_, open := <-ch
	assert.False(t, open, "channel closed")
	assert.False(t, held.Ack())

	ch2, err := sub.Subscribe(context.Background(), "orders")
	require.NoError(t, err)
	m := next(t, ch2)
	assert.Equal(t, "m1", m.UUID)
	assert.Equal(t, "1", m.Metadata.Get(watermillbridge.MetadataAttempt))
	m.Ack()
}

// Concurrent Closes all return once the channels are closed.
func TestConcurrentClose(t *testing.T) {
	b := newBroker(t)
	sub := watermillbridge.NewSubscriber(b, "g")
	var chans []<-chan *message.Message
	for _, topic := range []string{"a", "b", "c"} {
		ch, err := sub.Subscribe(context.Background(), topic)
		require.NoError(t, err)
		chans = append(chans, ch)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			assert.NoError(t, sub.Close())
			for _, ch := range chans {
				assertClosed(t, ch)
			}
		})
	}
	wg.Wait()
}
