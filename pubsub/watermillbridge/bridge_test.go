package watermillbridge_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/watermillbridge"
	"github.com/switchyard-go/switchyard/transport/memory"
)

func newBroker(t *testing.T) *pubsub.Client {
	b, err := memory.New(memory.Config{}, pubsub.WithLogger(nil))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// observe returns an observer that sends every settlement to settled.
func observe(settled chan<- pubsub.Settlement) pubsub.Option {
	return pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, s pubsub.Settlement) { settled <- s }})
}

// assertClosed asserts that ch is closed now, without waiting.
func assertClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v, open := <-ch:
		assert.False(t, open, "channel closed; got %v", v)
	default:
		t.Error("channel not closed")
	}
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived")
		panic("unreachable")
	}
}

func TestPublisherMapsFields(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	got := make(chan *pubsub.Message, 1)
	_, err := b.Subscribe(ctx, "orders", "g", func(_ context.Context, m *pubsub.Message) error { got <- m; return nil })
	require.NoError(t, err)

	wm := message.NewMessage("wm-1", []byte("payload"))
	wm.Metadata.Set("trace", "t1")
	wm.Metadata.Set(watermillbridge.MetadataKey, "customer-9")
	wm.Metadata.Set(watermillbridge.MetadataAttempt, "3") // from an earlier delivery
	require.NoError(t, watermillbridge.NewPublisher(b).Publish("orders", wm))

	m := next(t, got)
	assert.Equal(t, "wm-1", m.ID)
	assert.Equal(t, "customer-9", m.Key)
	assert.Equal(t, map[string]string{"trace": "t1"}, m.Metadata)
	assert.Equal(t, []byte("payload"), m.Payload)
}

func TestSubscriberAckAndNack(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	sub := watermillbridge.NewSubscriber(b, "wm-group", pubsub.WithBackoff(5*time.Millisecond, 10*time.Millisecond), pubsub.WithLogger(nil))
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "m1", Key: "k", Metadata: map[string]string{"a": "b"}, Payload: []byte("x")}))

	first := next(t, ch)
	assert.Equal(t, "m1", first.UUID)
	assert.Equal(t, "1", first.Metadata.Get(watermillbridge.MetadataAttempt))
	assert.Equal(t, "k", first.Metadata.Get(watermillbridge.MetadataKey))
	assert.Equal(t, "b", first.Metadata.Get("a"))
	first.Nack()

	second := next(t, ch)
	assert.Equal(t, "m1", second.UUID)
	assert.Equal(t, "2", second.Metadata.Get(watermillbridge.MetadataAttempt), "nack retried with the next attempt")
	second.Ack()

	select {
	case m := <-ch:
		t.Fatalf("unexpected redelivery of %s after Ack", m.UUID)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, sub.Close())
	assertClosed(t, ch)
	_, err = sub.Subscribe(ctx, "orders")
	assert.ErrorIs(t, err, pubsub.ErrClosed)
}

// Nacks count as failed attempts: after WithMaxAttempts of them the message
// is dead-lettered in its group, with the attempts in its metadata.
func TestNackDeadLettersAfterMaxAttempts(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	settled := make(chan pubsub.Settlement, 3)
	sub := watermillbridge.NewSubscriber(b, "g", pubsub.WithMaxAttempts(2), pubsub.WithBackoff(time.Millisecond, time.Millisecond), observe(settled))
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "m1", Payload: []byte("x")}))
	for attempt := 1; attempt <= 2; attempt++ {
		m := next(t, ch)
		assert.Equal(t, strconv.Itoa(attempt), m.Metadata.Get(watermillbridge.MetadataAttempt))
		assert.True(t, m.Nack())
	}
	assert.Equal(t, pubsub.OutcomeRetried, next(t, settled).Outcome)
	assert.Equal(t, pubsub.OutcomeDeadLettered, next(t, settled).Outcome)
	dead, err := b.ListDeadLetters(ctx, "orders", "g", 0)
	require.NoError(t, err)
	assert.Equal(t, "m1", dead[0].ID)
	assert.Equal(t, "2", dead[0].Metadata[pubsub.MetadataAttempts])
	assert.Equal(t, "watermillbridge: message nacked", dead[0].Metadata[pubsub.MetadataDeadLetterReason])
	select {
	case m := <-ch:
		t.Fatalf("%s delivered again after it was dead-lettered", m.UUID)
	case <-time.After(100 * time.Millisecond):
	}
}

// A watermill Router with middleware runs on a Switchyard broker.
func TestRouterOnSwitchyard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := newBroker(t)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	require.NoError(t, err)
	router.AddHandler("upper", "in", watermillbridge.NewSubscriber(b, "router"), "out", watermillbridge.NewPublisher(b),
		func(m *message.Message) ([]*message.Message, error) {
			return []*message.Message{message.NewMessage(watermill.NewUUID(), append([]byte("seen:"), m.Payload...))}, nil
		})
	require.NoError(t, b.CreateGroup(ctx, "out", "reader"))
	go func() { _ = router.Run(ctx) }()
	<-router.Running()

	out := make(chan string, 3)
	_, err = b.Subscribe(ctx, "out", "reader", func(_ context.Context, m *pubsub.Message) error { out <- string(m.Payload); return nil })
	require.NoError(t, err)
	for _, p := range []string{"a", "b", "c"} {
		require.NoError(t, b.Publish(ctx, "in", pubsub.NewMessage([]byte(p))))
	}
	got := map[string]bool{next(t, out): true, next(t, out): true, next(t, out): true}
	assert.Equal(t, map[string]bool{"seen:a": true, "seen:b": true, "seen:c": true}, got)
	require.NoError(t, router.Close())
}

// Closing the Subscriber hands back messages nobody took, without using up
// their attempts: with MaxAttempts 1 they still reach the next subscriber.
func TestCloseHandsBackUntakenMessages(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	sub := watermillbridge.NewSubscriber(b, "g", pubsub.WithMaxAttempts(1), pubsub.WithConcurrency(4), pubsub.WithLogger(nil))
	ch, err := sub.Subscribe(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"}, &pubsub.Message{ID: "c"}))
	first := next(t, ch)
	first.Ack()
	require.NoError(t, sub.Close())

	got := make(chan string, 3)
	_, err = b.Subscribe(ctx, "orders", "g", func(_ context.Context, m *pubsub.Message) error { got <- m.ID; return nil })
	require.NoError(t, err)
	ids := map[string]bool{next(t, got): true, next(t, got): true}
	delete(ids, first.UUID)
	assert.Len(t, ids, 2, "the two untaken messages arrive at the next member")
	dead, err := b.ListDeadLetters(ctx, "orders", "g", 0)
	require.NoError(t, err)
	assert.Empty(t, dead, "the close dead-lettered nothing")
}
