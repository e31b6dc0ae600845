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

// timerSlack absorbs timer and broker TTL granularity in backoff checks.
const timerSlack = 15 * time.Millisecond

// testRedelivery: a failed message comes back with Attempt incremented, no
// sooner than the backoff's lower bound (half the nominal delay).
func (s *suite) testRedelivery(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	in := newInbox()
	initial := 200 * time.Millisecond
	subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		in.add(0, m)
		if m.Attempt < 3 {
			return fmt.Errorf("attempt %d fails", m.Attempt)
		}
		return nil
	}, pubsub.WithBackoff(initial, 4*initial), pubsub.WithMaxAttempts(5))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "flaky", Payload: []byte("p")}))

	in.waitN(t, 3, s.h.Timeout)
	got := in.quiet(3 * initial)
	require.Len(t, got, 3, "three deliveries, none after the success")
	for i, d := range got {
		assert.Equal(t, "flaky", d.msg.ID)
		assert.Equal(t, i+1, d.msg.Attempt, "delivery %d", i)
		assert.Equal(t, []byte("p"), d.msg.Payload)
	}
	// Attempt 1 failed: delay in [initial/2, initial]; attempt 2: [initial, 2*initial].
	assert.GreaterOrEqual(t, got[1].at.Sub(got[0].at), initial/2-timerSlack, "backoff after attempt 1")
	assert.GreaterOrEqual(t, got[2].at.Sub(got[1].at), initial-timerSlack, "backoff after attempt 2")
}

// testPanic: a panicking handler's message is retried, not lost.
func (s *suite) testPanic(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		in.add(0, m)
		if m.Attempt == 1 {
			panic("handler bug")
		}
		return nil
	}, pubsub.WithBackoff(100*time.Millisecond, 200*time.Millisecond))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "p1"}))
	in.waitN(t, 2, s.h.Timeout)
	got := in.quiet(quietPeriod)
	require.Len(t, got, 2)
	assert.Equal(t, []int{1, 2}, []int{got[0].msg.Attempt, got[1].msg.Attempt})
	assert.GreaterOrEqual(t, got[1].at.Sub(got[0].at), 50*time.Millisecond-timerSlack, "backoff after a panic, no hot loop")
}

// deadLetterCase runs a handler that always fails with err and returns the
// handler's deliveries and the one dead letter read from dlqTopic.
func (s *suite) deadLetterCase(t *testing.T, err error, dlqTopic string, opts ...pubsub.SubscribeOption) (string, []delivery, *pubsub.Message) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	if dlqTopic == "" {
		dlqTopic = topic + pubsub.DeadLetterSuffix
	}
	calls := newInbox()
	opts = append([]pubsub.SubscribeOption{pubsub.WithBackoff(10*time.Millisecond, 20*time.Millisecond)}, opts...)
	subscribe(t, ctx, b, topic, "billing", func(_ context.Context, m *pubsub.Message) error {
		calls.add(0, m)
		return err
	}, opts...)
	dead := newInbox()
	subscribe(t, ctx, b, dlqTopic, "billing", dead.handler(0))

	sent := &pubsub.Message{ID: "doomed", Key: "k", Metadata: map[string]string{"trace": "t-1"}, Payload: []byte{0, 1, 2}}
	require.NoError(t, b.Publish(ctx, topic, sent))
	dead.waitN(t, 1, s.h.Timeout)
	dl := dead.quiet(quietPeriod)
	require.Len(t, dl, 1, "one dead letter")
	m := dl[0].msg
	assert.Equal(t, "doomed", m.ID)
	assert.Equal(t, "k", m.Key)
	assert.Equal(t, []byte{0, 1, 2}, m.Payload)
	assert.Equal(t, "t-1", m.Metadata["trace"])
	assert.Equal(t, topic, m.Metadata[pubsub.MetadataOriginalTopic])
	assert.Equal(t, "billing", m.Metadata[pubsub.MetadataGroup])
	return topic, calls.quiet(quietPeriod), m
}

func (s *suite) testDeadLetterMaxAttempts(t *testing.T) {
	_, calls, m := s.deadLetterCase(t, errors.New("card declined"), "", pubsub.WithMaxAttempts(3))
	require.Len(t, calls, 3, "handler called MaxAttempts times")
	for i, c := range calls {
		assert.Equal(t, i+1, c.msg.Attempt)
	}
	assert.Equal(t, "card declined", m.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "3", m.Metadata[pubsub.MetadataAttempts])
}

func (s *suite) testDeadLetterPermanent(t *testing.T) {
	_, calls, m := s.deadLetterCase(t, pubsub.Permanent(errors.New("malformed order")), "", pubsub.WithMaxAttempts(5))
	require.Len(t, calls, 1, "no retries for Permanent")
	assert.Equal(t, "malformed order", m.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "1", m.Metadata[pubsub.MetadataAttempts])
}

func (s *suite) testDeadLetterCustomTopic(t *testing.T) {
	custom := topicName(t) + "-graveyard"
	_, calls, m := s.deadLetterCase(t, pubsub.Permanent(errors.New("nope")), custom, pubsub.WithDeadLetter(custom))
	require.Len(t, calls, 1)
	assert.Equal(t, "nope", m.Metadata[pubsub.MetadataDeadLetterReason])
}
