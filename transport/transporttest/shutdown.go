package transporttest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// testCloseDrains: Close waits for the in-flight handler and acks its
// message, and delivers nothing new meanwhile: the next message waits for the
// next member.
func (s *suite) testCloseDrains(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	started, release := make(chan struct{}), make(chan struct{})
	calls := newInbox()
	sub := subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		calls.add(0, m)
		if m.ID == "slow" {
			close(started)
			<-release
		}
		return nil
	}, pubsub.WithConcurrency(1))
	// "queued" is published once "slow" runs: brokers without ordering
	// keys (Pub/Sub) do not deliver a batch in order.
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "slow"}))
	select {
	case <-started:
	case <-time.After(s.h.Timeout):
		t.Fatal("handler not called")
	}
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "queued"}))
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler was running", err)
	case <-time.After(quietPeriod):
	}
	close(release)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(s.h.Timeout):
		t.Fatal("Close did not return after the handler finished")
	}
	assert.NoError(t, sub.Close(), "Close is idempotent")
	select {
	case <-sub.Done():
	default:
		t.Error("Done not closed after Close")
	}
	assert.Equal(t, []string{"slow"}, ids(calls.snapshot()), "a closing subscription takes no new message")

	again := newInbox()
	subscribe(t, ctx, s.h.NewBroker(t), topic, "g", again.handler(0))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "next"}))
	again.waitN(t, 2, s.h.Timeout)
	assert.Equal(t, []string{"next", "queued"}, ids(again.quiet(quietPeriod)), "the drained message was acked; the queued one waited")
}

// testShutdownDeadline: a handler still running at Shutdown's deadline has
// its context cancelled, and its message is redelivered with the next
// Attempt.
func (s *suite) testShutdownDeadline(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	started, sawCancel := make(chan struct{}), make(chan struct{})
	sub := subscribe(t, ctx, b, topic, "g", func(hctx context.Context, m *pubsub.Message) error {
		close(started)
		<-hctx.Done()
		close(sawCancel)
		return hctx.Err()
	})
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "stuck"}))
	select {
	case <-started:
	case <-time.After(s.h.Timeout):
		t.Fatal("handler not called")
	}
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := sub.Shutdown(sctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	select {
	case <-sawCancel:
	case <-time.After(s.h.Timeout):
		t.Fatal("handler context not cancelled")
	}

	again := newInbox()
	subscribe(t, ctx, s.h.NewBroker(t), topic, "g", again.handler(0))
	got := again.waitN(t, 1, s.h.Timeout)
	assert.Equal(t, "stuck", got[0].msg.ID)
	assert.Equal(t, 2, got[0].msg.Attempt, "the interrupted delivery counts as an attempt")
	all := again.quiet(quietPeriod)
	attempts := make([]int, len(all))
	for i, d := range all {
		attempts[i] = d.msg.Attempt
	}
	assert.Len(t, all, 1, "delivered once more, not again: IDs %v, attempts %v", ids(all), attempts)
}

// testContextCancel: cancelling Subscribe's context stops the subscription;
// what is published afterwards goes to the group's next member.
func (s *suite) testContextCancel(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	sctx, cancel := context.WithCancel(ctx)
	stopped := newInbox()
	sub := subscribe(t, sctx, b, topic, "g", stopped.handler(0))
	cancel()
	select {
	case <-sub.Done():
	case <-time.After(s.h.Timeout):
		t.Fatal("subscription still running after its context was cancelled")
	}
	assert.NoError(t, sub.Close())
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "after-cancel"}))
	next := newInbox()
	subscribe(t, ctx, b, topic, "g", next.handler(0))
	next.waitN(t, 1, s.h.Timeout)
	assert.Equal(t, []string{"after-cancel"}, ids(next.quiet(quietPeriod)))
	assert.Empty(t, stopped.snapshot(), "the cancelled subscription handled nothing")
}

// testClosed: a closed broker closes its subscriptions and refuses calls.
func (s *suite) testClosed(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	sub := subscribe(t, ctx, b, topic, "g", newInbox().handler(0))
	pinger, canPing := b.(pubsub.Pinger)
	if canPing {
		require.NoError(t, pinger.Ping(ctx), "Ping before Close")
	}
	require.NoError(t, b.Close())
	select {
	case <-sub.Done():
	default:
		t.Error("Broker.Close left a subscription running")
	}
	assert.ErrorIs(t, b.Publish(ctx, topic, pubsub.NewMessage(nil)), pubsub.ErrClosed)
	_, err := b.Subscribe(ctx, topic, "g", newInbox().handler(0))
	assert.ErrorIs(t, err, pubsub.ErrClosed)
	if gc, ok := b.(pubsub.GroupCreator); ok {
		assert.ErrorIs(t, gc.CreateGroup(ctx, topic, "h"), pubsub.ErrClosed)
	}
	if canPing {
		assert.ErrorIs(t, pinger.Ping(ctx), pubsub.ErrClosed, "Ping after Close")
	}
	assert.NoError(t, b.Close(), "Close is idempotent")
}
