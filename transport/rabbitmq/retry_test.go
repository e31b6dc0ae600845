package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestRetryQueues: failures are retried through the shared per-delay retry
// queues, with exact attempt numbers and delays no shorter than asked, and
// the retry queues are the documented ones, empty afterwards.
func TestRetryQueues(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			ctx := testCtx(t)
			topic := uniqueTopic(t, "g")
			c, b := openDriver(t, testURL(t, "queue_type="+string(qt)))
			got := newCollector()
			const initial = 100 * time.Millisecond
			subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
				got.add(m)
				if m.Attempt < 4 {
					return errors.New("not yet")
				}
				return nil
			}, pubsub.WithBackoff(initial, time.Second), pubsub.WithMaxAttempts(10))
			require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "r1", Metadata: map[string]string{"m": "v"}}))

			got.waitN(t, 4)
			calls := got.quiet(500 * time.Millisecond)
			require.Len(t, calls, 4, "no delivery after the success")
			for i, call := range calls {
				assert.Equal(t, "r1", call.msg.ID)
				assert.Equal(t, i+1, call.msg.Attempt)
				assert.Equal(t, map[string]string{"m": "v"}, call.msg.Metadata)
			}
			// Attempt n failed: the delay is at least initial·2^(n-1)/2.
			for n := 1; n < 4; n++ {
				least := initial << (n - 1) / 2
				assert.GreaterOrEqual(t, calls[n].at.Sub(calls[n-1].at), least, "delay after attempt %d", n)
			}

			// The retry queues are the documented ones, and empty now.
			b.retries.mu.Lock()
			var buckets []time.Duration
			for bucket := range b.retries.at {
				buckets = append(buckets, bucket)
			}
			b.retries.mu.Unlock()
			require.NotEmpty(t, buckets)
			ch := rawChannel(t)
			for _, bucket := range buckets {
				name := retryName(qt, bucket)
				assert.Equal(t, fmt.Sprintf("%s%s:%d", retryPrefix, qt, bucket.Milliseconds()), name)
				assert.Equal(t, bucket, retryBucket(bucket))
				q, err := ch.QueueDeclare(name, true, false, false, false, retryQueueArgs(qt, bucket))
				require.NoError(t, err, "retry queue %s has the documented arguments", name)
				assert.Equal(t, 0, q.Messages)
				require.NoError(t, ch.ExchangeDeclarePassive(name, "fanout", true, false, false, false, nil), "and an exchange of its name")
			}
		})
	}
}

// TestRetrySurvivesConsumerCrash: once a retry is scheduled, the delay and
// the attempt count live on the broker: a new process gets the message
// after the delay with the next attempt number.
func TestRetrySurvivesConsumerCrash(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	first, b := openDriver(t, testURL(t, ""))
	failed := make(chan time.Time, 1)
	retried := make(chan struct{}, 1)
	subscribe(t, ctx, first, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		if m.Attempt == 1 {
			failed <- time.Now()
		}
		return errors.New("fail")
	}, pubsub.WithBackoff(2*time.Second, 2*time.Second), pubsub.WithObserver(pubsub.Observer{
		OnSettle: func(_ context.Context, s pubsub.Settlement) {
			if s.Outcome == pubsub.OutcomeRetried {
				retried <- struct{}{}
			}
		},
	}))
	require.NoError(t, first.Publish(ctx, topic, &pubsub.Message{ID: "survivor"}))
	failedAt := <-failed
	<-retried // the retry copy was confirmed and the original acked
	// Drop the process, as a crash would.
	for _, l := range []*link{b.subLink, b.pubLink, b.adminLink} {
		_ = l.close()
	}

	second := openTest(t, testURL(t, ""))
	got := newCollector()
	subscribe(t, ctx, second, topic, "g", got.handler)
	call := got.waitN(t, 1)[0]
	assert.Equal(t, "survivor", call.msg.ID)
	assert.Equal(t, 2, call.msg.Attempt)
	assert.GreaterOrEqual(t, call.at.Sub(failedAt), time.Second, "the backoff (1s..2s) was kept")
	assert.Len(t, got.quiet(300*time.Millisecond), 1)
}

// TestConsumerKilledMidHandler: when a member's connection drops while its
// handler runs, the message goes to another member of the group, and the
// attempt count goes on from where it was.
func TestConsumerKilledMidHandler(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			ctx := testCtx(t)
			topic := uniqueTopic(t, "workers")
			rawURL := testURL(t, "queue_type="+string(qt))
			a, ab := openDriver(t, rawURL)
			running := make(chan *pubsub.Message, 1)
			release := make(chan struct{})
			subscribe(t, ctx, a, topic, "workers", func(_ context.Context, m *pubsub.Message) error {
				if m.Attempt == 1 {
					return errors.New("first attempt fails")
				}
				running <- m
				<-release
				return nil
			}, pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond), pubsub.WithConcurrency(1))
			t.Cleanup(func() { close(release) }) // before the subscription closes
			require.NoError(t, a.Publish(ctx, topic, &pubsub.Message{ID: "job-1"}))
			select {
			case m := <-running:
				require.Equal(t, 2, m.Attempt)
			case <-time.After(waitTimeout):
				t.Fatal("member a never ran attempt 2")
			}

			b := openTest(t, rawURL)
			got := newCollector()
			subscribe(t, ctx, b, topic, "workers", got.handler)
			// Kill a's consuming connection for good, as a crash would.
			_ = ab.subLink.close()

			call := got.waitN(t, 1)[0]
			assert.Equal(t, "job-1", call.msg.ID)
			assert.Equal(t, 3, call.msg.Attempt, "attempt 2 was interrupted; the count goes on")
			assert.Len(t, got.quiet(300*time.Millisecond), 1)
		})
	}
}

// TestRetryQueueDeletedUnderSubscription: a retry queue deleted while a
// subscription uses it (an operator, or its expiry) does not lose the
// retry copy. The copy is published mandatory: the broker returns it
// unroutable, and the driver declares the queue again and publishes once
// more. (Published without mandatory, as before, the broker confirmed and
// dropped the copy, and the original was acked: the message was lost.)
func TestRetryQueueDeletedUnderSubscription(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			ctx := testCtx(t)
			topic := uniqueTopic(t, "g")
			c, b := openDriver(t, testURL(t, "queue_type="+string(qt)))
			got := newCollector()
			const delay = 100 * time.Millisecond // [50ms, 100ms] with jitter
			subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
				got.add(m)
				if m.Attempt == 1 {
					return errors.New("fail once")
				}
				return nil
			}, pubsub.WithBackoff(delay, delay))
			require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "before"}))
			got.waitN(t, 2)

			// Every retry queue this delay may use is declared, and the
			// driver remembers it is; then they are deleted.
			ch := rawChannel(t)
			for _, bucket := range []time.Duration{retryBucket(delay / 2), retryBucket(3 * delay / 4), retryBucket(delay)} {
				_, err := b.retryTarget(ctx, bucket, false)
				require.NoError(t, err)
				_, err = ch.QueueDelete(retryName(qt, bucket), false, false, false)
				require.NoError(t, err)
			}
			require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "after"}))
			calls := got.waitN(t, 4)
			assert.Equal(t, []string{"after", "after"}, []string{calls[2].msg.ID, calls[3].msg.ID})
			assert.Equal(t, []int{1, 2}, []int{calls[2].msg.Attempt, calls[3].msg.Attempt}, "the retry copy arrived")
			assert.Len(t, got.quiet(300*time.Millisecond), 4)
		})
	}
}

// TestRetryFallback: when the retry copy cannot be published at all (here:
// its retry queue was replaced by one with other arguments, so declaring it
// fails with PRECONDITION_FAILED), the original returns to the queue after
// the delay, counted as a failed delivery, and the loop is told that the
// settlement failed.
func TestRetryFallback(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			ctx := testCtx(t)
			topic := uniqueTopic(t, "g")
			c := openTest(t, testURL(t, "queue_type="+string(qt)))
			const delay = 300 * time.Millisecond
			ch := rawChannel(t)
			for _, b := range []time.Duration{retryBucket(delay / 2), retryBucket(3 * delay / 4), retryBucket(delay)} {
				_, err := ch.QueueDelete(retryName(qt, b), false, false, false)
				require.NoError(t, err)
				_, err = ch.QueueDeclare(retryName(qt, b), true, false, false, false, amqp.Table{"x-queue-type": string(qt)})
				require.NoError(t, err)
			}
			t.Cleanup(func() {
				ch := rawChannel(t)
				for _, b := range []time.Duration{retryBucket(delay / 2), retryBucket(3 * delay / 4), retryBucket(delay)} {
					_, _ = ch.QueueDelete(retryName(qt, b), false, false, false)
				}
			})
			got := newCollector()
			var mu sync.Mutex
			var settleErrs []error
			subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
				got.add(m)
				if m.Attempt == 1 {
					return errors.New("fail once")
				}
				return nil
			}, pubsub.WithBackoff(delay, delay), pubsub.WithObserver(pubsub.Observer{
				OnSettle: func(_ context.Context, s pubsub.Settlement) {
					if s.Outcome == pubsub.OutcomeSettleFailed {
						mu.Lock()
						settleErrs = append(settleErrs, s.Err)
						mu.Unlock()
					}
				},
			}))
			require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "fallback"}))
			calls := got.waitN(t, 2)
			assert.Equal(t, []int{1, 2}, []int{calls[0].msg.Attempt, calls[1].msg.Attempt}, "counted as a failed delivery")
			assert.GreaterOrEqual(t, calls[1].at.Sub(calls[0].at), delay/2, "not before the delay")
			mu.Lock()
			require.Len(t, settleErrs, 1)
			assert.ErrorContains(t, settleErrs[0], "returns to the queue after")
			assert.ErrorContains(t, settleErrs[0], "PRECONDITION_FAILED")
			mu.Unlock()
			assert.Len(t, got.quiet(300*time.Millisecond), 2)
		})
	}
}
