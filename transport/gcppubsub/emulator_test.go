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
