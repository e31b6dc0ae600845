package transporttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// testPublishDuringDrain: Broker.Close drains its subscriptions while
// publishing still works (DESIGN line 9): handlers running at Close publish
// successfully and dead-letter successfully; afterwards every call returns
// ErrClosed.
func (s *suite) testPublishDuringDrain(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	watcher := s.h.NewBroker(t)
	topic, out := topicName(t), topicName(t)+"-out"
	outbox := newInbox()
	subscribe(t, ctx, watcher, out, "g", outbox.handler(0))
	const handlers = 4
	var running sync.WaitGroup
	running.Add(handlers)
	release := make(chan struct{})
	errs := make(chan error, handlers)
	sub := subscribe(t, ctx, b, topic, "g", func(hctx context.Context, m *pubsub.Message) error {
		running.Done()
		<-release
		if m.ID == "m-0" {
			return pubsub.Permanent(errors.New("dead-lettered during the drain"))
		}
		err := b.Publish(hctx, out, &pubsub.Message{ID: "from-" + m.ID})
		errs <- err
		return err
	}, pubsub.WithConcurrency(handlers))
	require.NoError(t, b.Publish(ctx, topic, newMessages("m", handlers)...))
	running.Wait()

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case <-sub.Stopping(): // the broker's drain has reached the subscription
	case <-time.After(s.h.Timeout):
		t.Fatal("Close did not stop the subscription")
	}
	_, err := b.Subscribe(ctx, topic, "h", newInbox().handler(0))
	assert.ErrorIs(t, err, pubsub.ErrClosed, "Subscribe while the broker drains")
	close(release)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(s.h.Timeout):
		t.Fatal("Close did not return after the handlers finished")
	}
	for range handlers - 1 {
		assert.NoError(t, <-errs, "Publish from a handler during the drain")
	}
	outbox.waitN(t, handlers-1, s.h.Timeout)
	want := []string{}
	for i := 1; i < handlers; i++ {
		want = append(want, fmt.Sprintf("from-m-%d", i))
	}
	assert.Equal(t, want, ids(outbox.quiet(quietPeriod)))
	dl := s.waitDeadLetters(t, watcher, topic, "g", 1)
	assert.Equal(t, "m-0", dl[0].ID, "dead-lettered during the drain")
	assert.ErrorIs(t, b.Publish(ctx, out, &pubsub.Message{ID: "late"}), pubsub.ErrClosed, "Publish after Close")
}
