//go:build reliability

package rabbitmq

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/rabbitnode"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Case 4 of the reliability suite (issue 15), RabbitMQ part: a handler that
// outlives the broker's consumer_timeout.
//
//	go test -race -tags reliability -run TestConsumerTimeout -v ./transport/rabbitmq
//
// An own RabbitMQ node (internal/rabbitnode) runs with consumer_timeout =
// 10000 (10 s). The handler of message "slow" runs until the message is
// delivered a second time (at most 3 minutes), then returns nil; the test
// asserts what the package documentation says under "Delivery semantics":
// RabbitMQ closes the consumer's channel (PRECONDITION_FAILED, delivery
// acknowledgement timed out) and returns its unacknowledged messages; the
// subscription consumes again on a new channel by itself; the message is
// delivered again with Attempt 2 while the first run still runs (two runs
// at once, in one member); the first run's ack fails
// (OutcomeSettleFailed), the second's succeeds, and nothing is lost or
// delivered a third time; later messages flow as usual.
func TestConsumerTimeout(t *testing.T) {
	const timeout = 10 * time.Second
	node := rabbitnode.Start(t, "consumer_timeout = 10000")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	u, err := url.Parse(node.URL())
	require.NoError(t, err)

	type call struct {
		id      string
		attempt int
		start   time.Time
	}
	var (
		mu       sync.Mutex
		calls    []call
		settled  []pubsub.Settlement
		changed  = make(chan struct{}, 1)
		second   = make(chan struct{})
		onceSec  sync.Once
		firstEnd time.Time
	)
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	obs := pubsub.Observer{OnSettle: func(_ context.Context, s pubsub.Settlement) {
		mu.Lock()
		settled = append(settled, s)
		mu.Unlock()
		signal()
	}}
	c, err := OpenURL(ctx, u, pubsub.WithLogger(testLogger()), pubsub.WithObserver(obs))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	const topic, group = "slow", "g"
	require.NoError(t, c.CreateGroup(ctx, topic, group))
	_, err = c.Subscribe(ctx, topic, group, func(hctx context.Context, m *pubsub.Message) error {
		mu.Lock()
		calls = append(calls, call{m.ID, m.Attempt, time.Now()})
		n := len(calls)
		mu.Unlock()
		signal()
		if m.ID == "slow" && n == 1 {
			select {
			case <-second: // the broker delivered it again
			case <-time.After(3 * time.Minute):
			case <-hctx.Done():
			}
			mu.Lock()
			firstEnd = time.Now()
			mu.Unlock()
			return nil
		}
		if m.ID == "slow" {
			onceSec.Do(func() { close(second) })
		}
		return nil
	}, pubsub.WithConcurrency(2))
	require.NoError(t, err)

	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "slow", Payload: []byte("x")}))
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(4 * time.Minute)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			select {
			case <-changed:
			case <-deadline:
				mu.Lock()
				defer mu.Unlock()
				require.FailNowf(t, "timed out", "waiting for %s; calls %+v, settlements %d", what, calls, len(settled))
			}
		}
	}
	// Both runs settle: the second (acked), then the first (its ack fails).
	waitFor("two settlements of slow", func() bool { return len(settled) >= 2 })

	mu.Lock()
	require.Len(t, calls, 2, "the handler ran twice")
	first, again := calls[0], calls[1]
	assert.Equal(t, "slow", again.id)
	assert.Equal(t, 1, first.attempt)
	assert.Equal(t, 2, again.attempt, "the broker counted the timed-out delivery")
	redelivery := again.start.Sub(first.start)
	assert.GreaterOrEqual(t, redelivery, timeout, "not redelivered before consumer_timeout")
	assert.True(t, again.start.Before(firstEnd), "the second run began while the first ran")
	assert.Equal(t, pubsub.OutcomeAcked, settled[0].Outcome, "the second run's ack")
	assert.Equal(t, pubsub.OutcomeSettleFailed, settled[1].Outcome, "the first run's ack, on the closed channel")
	t.Logf("redelivered %v after the first delivery (consumer_timeout %v); first run's settlement: %v", redelivery.Round(time.Millisecond), timeout, settled[1].Err)
	mu.Unlock()

	// The subscription still consumes; the queue is empty: nothing lost, no
	// third delivery of slow.
	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "after", Payload: []byte("y")}))
	waitFor("after", func() bool { return len(settled) >= 3 })
	mu.Lock()
	assert.Equal(t, "after", calls[len(calls)-1].id)
	assert.Len(t, calls, 3, "no third delivery of slow")
	mu.Unlock()
	out, err := node.Ctl(ctx, "list_queues", "--no-table-headers", "name", "messages", "messages_unacknowledged")
	require.NoError(t, err)
	assert.Equal(t, groupQueueName(topic, group)+"\t0\t0", strings.TrimSpace(lineOf(out, groupQueueName(topic, group))))
}
