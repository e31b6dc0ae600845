package transporttest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// testRetriesDoNotBlock: messages waiting out a long backoff do not hold up
// the delivery of others (DESIGN line 7): with every handler slot's worth
// of messages (twice over) in backoff, a healthy message is handled at once.
func (s *suite) testRetriesDoNotBlock(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	const concurrency = 2
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		in.add(0, m)
		if m.ID != "healthy" {
			return errors.New("fails, then waits a long backoff")
		}
		return nil
	}, pubsub.WithConcurrency(concurrency), pubsub.WithBackoff(time.Minute, time.Minute))
	bad := newMessages("bad", 2*concurrency)
	require.NoError(t, b.Publish(ctx, topic, bad...))
	in.waitN(t, len(bad), s.h.Timeout)
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "healthy"}))
	got := in.waitN(t, len(bad)+1, s.h.Timeout)
	assert.Equal(t, "healthy", got[len(bad)].msg.ID, "the healthy message is handled while the others wait")
	for _, d := range got[:len(bad)] {
		assert.Equal(t, 1, d.msg.Attempt, "no retry before its backoff (%s)", d.msg.ID)
	}
}

// testUntouchedHandBack: messages handed back untouched keep their Attempt
// (DESIGN line 5): those fetched ahead but never handled when a
// subscription closes, and one whose handler returned ErrClosed because the
// subscription was stopping.
func (s *suite) testUntouchedHandBack(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	require.NoError(t, b.(pubsub.GroupCreator).CreateGroup(ctx, topic, "g"))
	const n = 20
	require.NoError(t, b.Publish(ctx, topic, newMessages("m", n)...))

	first := newInbox()
	started, assigned := make(chan struct{}), make(chan struct{})
	var sub *pubsub.Subscription
	sub = subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		first.add(0, m)
		if len(first.snapshot()) == 1 {
			close(started)
			<-assigned
			<-sub.Stopping()
			return fmt.Errorf("stopping: %w", pubsub.ErrClosed) // could not finish: hand it back
		}
		return nil
	}, pubsub.WithConcurrency(1))
	close(assigned)
	select {
	case <-started:
	case <-time.After(s.h.Timeout):
		t.Fatal("handler not called")
	}
	require.NoError(t, sub.Close())
	require.Len(t, first.snapshot(), 1, "a closing subscription takes no new message")

	second := newInbox()
	subscribe(t, ctx, s.h.NewBroker(t), topic, "g", second.handler(0))
	second.waitN(t, n, s.h.Timeout)
	all := second.quiet(quietPeriod)
	if s.f.HandBackRepeats {
		assert.Equal(t, msgIDs(newMessages("m", n)), distinct(ids(all)), "every message at least once")
		t.Logf("%d deliveries of %d messages", len(all), n)
	} else {
		assert.Equal(t, msgIDs(newMessages("m", n)), ids(all), "every message once")
	}
	for _, d := range all {
		assert.Equal(t, 1, d.msg.Attempt, "%s was never run to an end: Attempt stays 1", d.msg.ID)
	}
}
