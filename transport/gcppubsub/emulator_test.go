package gcppubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// callCounter counts the calls of one RPC, as a pstest reactor.
type callCounter struct{ n *atomic.Int64 }

func (c callCounter) React(any) (bool, any, error) {
	c.n.Add(1)
	return false, nil, nil
}

// TestEmulatorFanOutToManyGroups: pstest counts a message's deliveries to
// all subscriptions of its topic together, and forwards a message to a
// subscription's dead-letter topic on that count. On an emulator every
// group of a topic with eight groups still gets the message, and a group that
// retries it sees Attempts 1, 2, 3 of its own, without the broker asking the
// emulator about the topic's subscriptions.
func TestEmulatorFanOutToManyGroups(t *testing.T) {
	var lists atomic.Int64
	e := startEmulator(t, pstest.ServerReactorOption{FuncName: "ListTopicSubscriptions", Reactor: callCounter{&lists}})
	b := newBroker(t, gcppubsub.Config{})
	recs := make([]*recorder, 8)
	for i := range recs {
		recs[i] = newRecorder()
		fail := i == 7
		subscribe(t, b, "activity", fmt.Sprintf("g%d", i), recs[i].handler(func(m *pubsub.Message) error {
			if fail && m.Attempt < 3 {
				return errors.New("fails twice")
			}
			return nil
		}), pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
	}
	require.NoError(t, b.Publish(context.Background(), "activity", &pubsub.Message{ID: "e1"}))
	for i, rec := range recs {
		n := 1
		if i == 7 {
			n = 3
		}
		got, _ := rec.wait(t, n)
		assert.Equal(t, []int{1, 2, 3}[:n], attempts(got), "group g%d", i)
	}
	time.Sleep(300 * time.Millisecond)
	for i, rec := range recs {
		assert.Equal(t, map[bool]int{true: 3, false: 1}[i == 7], rec.count(), "group g%d: nothing more", i)
	}
	assert.Zero(t, lists.Load(), "no ListTopicSubscriptions")
	s := getSub(t, e, gcppubsub.GroupID("activity", "g7"))
	assert.Nil(t, s.GetDeadLetterPolicy(), "no dead-letter policy on an emulator")
	assert.Nil(t, s.GetRetryPolicy(), "no retry policy on an emulator")
}

// TestEmulatorCloseHandsBackWhatItPushed: an emulator has no flow control
// and pushes a group's backlog to a member whatever its window; closing the
// member hands all of it back at once, untouched, to the next member.
func TestEmulatorCloseHandsBackWhatItPushed(t *testing.T) {
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	ctx := context.Background()
	require.NoError(t, b.CreateGroup(ctx, "backlog", "g"))
	const n = 30
	for i := range n {
		require.NoError(t, b.Publish(ctx, "backlog", &pubsub.Message{ID: fmt.Sprintf("m-%02d", i)}))
	}
	started := make(chan struct{})
	var sub *pubsub.Subscription
	assigned := make(chan struct{}) // sub is set
	var once atomic.Bool
	sub = subscribe(t, b, "backlog", "g", func(context.Context, *pubsub.Message) error {
		if once.CompareAndSwap(false, true) {
			close(started)
		}
		<-assigned
		<-sub.Stopping()
		return fmt.Errorf("stopping: %w", pubsub.ErrClosed)
	}, pubsub.WithConcurrency(1))
	close(assigned)
	select {
	case <-started:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}
	require.Eventually(t, func() bool {
		for _, m := range e.Messages() {
			if m.Deliveries == 0 {
				return false
			}
		}
		return true
	}, waitFor, 10*time.Millisecond, "the emulator pushed the whole backlog to the member")
	require.NoError(t, sub.Close())
	closed := time.Now()

	rec := newRecorder()
	subscribe(t, newBroker(t, gcppubsub.Config{}), "backlog", "g", rec.handler(nil))
	got, at := rec.wait(t, n)
	assert.Less(t, at[n-1].Sub(closed), 3*time.Second, "all back at once, not after an ack deadline")
	ids := map[string]bool{}
	for _, m := range got {
		ids[m.ID] = true
		assert.Equal(t, 1, m.Attempt, m.ID)
	}
	assert.Len(t, ids, n)
}
