package transporttest

import (
	"context"
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
