package gcppubsub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// TestRetriesLeaveTheFlowControlWindow: the client asks Pub/Sub for
// 2×Concurrency outstanding messages, and Pub/Sub counts every message not
// yet acked or nacked; messages waiting out a backoff must not hold that
// window (DESIGN line 7). With 2×Concurrency messages waiting out a 30s
// backoff, a healthy message is handled at once, and the waiting ones come
// back only after their backoff.
func TestRetriesLeaveTheFlowControlWindow(t *testing.T) {
	f := startFake(t)
	b := newServiceBroker(t, f, gcppubsub.Config{})
	const concurrency = 2
	rec := newRecorder()
	subscribe(t, b, "jobs", "workers", rec.handler(func(m *pubsub.Message) error {
		if m.ID != "healthy" {
			return errors.New("fails, then waits out a 30s backoff")
		}
		return nil
	}), pubsub.WithConcurrency(concurrency), pubsub.WithBackoff(30*time.Second, 30*time.Second))
	ctx := context.Background()
	for i := range 2 * concurrency {
		require.NoError(t, b.Publish(ctx, "jobs", &pubsub.Message{ID: fmt.Sprintf("bad-%d", i)}))
	}
	rec.wait(t, 2*concurrency)
	require.NoError(t, b.Publish(ctx, "jobs", &pubsub.Message{ID: "healthy"}))
	got, _ := rec.wait(t, 2*concurrency+1)
	assert.Equal(t, "healthy", got[2*concurrency].ID, "handled while the others wait")
	assert.Equal(t, []int64{2 * concurrency}, f.streamLimits(gcppubsub.GroupID("jobs", "workers")), "the window the client asked for")
	time.Sleep(300 * time.Millisecond) // nothing more arrives
	got = rec.snapshot()
	require.Len(t, got, 2*concurrency+1, "no redelivery before the backoff")
	for _, m := range got {
		assert.Equal(t, 1, m.Attempt, m.ID)
	}
}

// TestRetryWaitsOnPubSub: on Pub/Sub a failed message is nacked and waits
// out its backoff on Pub/Sub, whose subscription retry policy is the
// subscription's WithBackoff (the last Subscribe's), and comes back counted
// by Pub/Sub, to any member, in any process.
func TestRetryWaitsOnPubSub(t *testing.T) {
	f := startFake(t)
	b := newServiceBroker(t, f, gcppubsub.Config{})
	const initial = 300 * time.Millisecond
	failed := make(chan *pubsub.Message, 10)
	first := subscribe(t, b, "jobs", "workers", func(_ context.Context, m *pubsub.Message) error {
		failed <- m
		return errors.New("fails")
	}, pubsub.WithBackoff(initial, time.Minute))
	s, err := f.gs.GetSubscription(context.Background(), subReq(gcppubsub.GroupID("jobs", "workers")))
	require.NoError(t, err)
	s = f.withPolicies(s)
	assert.Equal(t, initial, s.GetRetryPolicy().GetMinimumBackoff().AsDuration())
	assert.Equal(t, time.Minute, s.GetRetryPolicy().GetMaximumBackoff().AsDuration())

	require.NoError(t, b.Publish(context.Background(), "jobs", &pubsub.Message{ID: "j"}))
	var m *pubsub.Message
	select {
	case m = <-failed:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}
	assert.Equal(t, 1, m.Attempt)
	nacked := time.Now()
	require.Eventually(t, func() bool { return f.called("ModifyAckDeadline") > 0 }, waitFor, 5*time.Millisecond, "nacked")
	closed := time.Now()
	require.NoError(t, first.Close())
	assert.Less(t, time.Since(closed), time.Second, "nothing held to hand back")

	rec := newRecorder()
	subscribe(t, newServiceBroker(t, f, gcppubsub.Config{}), "jobs", "workers", rec.handler(nil), pubsub.WithBackoff(initial, time.Minute))
	got, at := rec.wait(t, 1)
	assert.Equal(t, "j", got[0].ID)
	assert.Equal(t, 2, got[0].Attempt, "counted by Pub/Sub, in another process")
	assert.GreaterOrEqual(t, at[0].Sub(nacked), initial-20*time.Millisecond, "after the retry policy's backoff")

	subscribe(t, b, "jobs", "workers", rec.handler(nil), pubsub.WithBackoff(time.Second, 2*time.Hour))
	s, err = f.gs.GetSubscription(context.Background(), subReq(gcppubsub.GroupID("jobs", "workers")))
	require.NoError(t, err)
	s = f.withPolicies(s)
	assert.Equal(t, time.Second, s.GetRetryPolicy().GetMinimumBackoff().AsDuration(), "the last Subscribe's backoff")
	assert.Equal(t, 600*time.Second, s.GetRetryPolicy().GetMaximumBackoff().AsDuration(), "at most Pub/Sub's 600s")
}

// TestCloseHandsBackKeyedMessage: a message that holds its ordering key
// waits out its backoff in the member; closing hands it back by nack, so
// that Pub/Sub keeps the key's order and, with the retry policy, a backoff;
// the next member gets it counted, then the key's next message.
func TestCloseHandsBackKeyedMessage(t *testing.T) {
	f := startFake(t)
	b := newServiceBroker(t, f, gcppubsub.Config{})
	const initial = 500 * time.Millisecond
	failed := make(chan time.Time, 10)
	sub := subscribe(t, b, "ledger", "posting", func(_ context.Context, m *pubsub.Message) error {
		failed <- time.Now()
		return errors.New("fails")
	}, pubsub.WithBackoff(initial, time.Minute))
	require.NoError(t, b.Publish(context.Background(), "ledger", &pubsub.Message{ID: "k-1", Key: "acct"}, &pubsub.Message{ID: "k-2", Key: "acct"}))
	var failedAt time.Time
	select {
	case failedAt = <-failed:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}
	require.NoError(t, sub.Close())

	rec := newRecorder()
	subscribe(t, newServiceBroker(t, f, gcppubsub.Config{}), "ledger", "posting", rec.handler(nil), pubsub.WithBackoff(initial, time.Minute))
	got, at := rec.wait(t, 2)
	assert.Equal(t, []string{"k-1", "k-2"}, []string{got[0].ID, got[1].ID}, "the key's order")
	assert.Equal(t, []int{2, 1}, attempts(got))
	assert.GreaterOrEqual(t, at[0].Sub(failedAt), initial-20*time.Millisecond, "after the retry policy's backoff")
	assert.Len(t, failed, 0, "the first member ran it once")
}
