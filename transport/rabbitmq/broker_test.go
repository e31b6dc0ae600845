package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

const waitTimeout = 20 * time.Second

// got is one handler call.
type got struct {
	msg *pubsub.Message
	at  time.Time
}

// collector records handler calls.
type collector struct {
	mu     sync.Mutex
	calls  []got
	notify chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) add(m *pubsub.Message) {
	c.mu.Lock()
	c.calls = append(c.calls, got{msg: m, at: time.Now()})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []got {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]got(nil), c.calls...)
}

// waitN waits for n calls and returns them, failing t after waitTimeout.
func (c *collector) waitN(t *testing.T, n int) []got {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if s := c.snapshot(); len(s) >= n {
			return s
		}
		select {
		case <-c.notify:
		case <-deadline:
			require.FailNowf(t, "timed out", "waited for %d handler calls, got %d", n, len(c.snapshot()))
		}
	}
}

// rawChannel opens a plain amqp091 channel on the test broker, for checking
// what the transport declared and published.
func rawChannel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(testURL(t, ""))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	return ch
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestTopologyAndWireFormat checks the documented topology and message
// mapping with a plain AMQP client.
func TestTopologyAndWireFormat(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "billing")
	b := openTest(t, testURL(t, ""))
	require.NoError(t, b.CreateGroup(ctx, topic, "billing"))
	require.NoError(t, b.CreateGroup(ctx, topic, "billing"), "CreateGroup is idempotent")

	ch := rawChannel(t)
	require.NoError(t, ch.ExchangeDeclarePassive(topic, "fanout", true, false, false, false, nil), "a durable fanout exchange named after the topic")
	q, err := ch.QueueDeclare(topic+".billing", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err, "a durable quorum queue <topic>.<group>")
	assert.Equal(t, 0, q.Messages)

	sent := &pubsub.Message{ID: "wire-1", Key: "k1", Metadata: map[string]string{"trace": "t", "content-type": "application/json"}, Payload: []byte(`{"a":1}`)}
	require.NoError(t, b.Publish(ctx, topic, sent))
	d, ok, err := ch.Get(topic+".billing", true)
	require.NoError(t, err)
	require.True(t, ok, "the message is in the group's queue once Publish returned")
	assert.Equal(t, "wire-1", d.MessageId)
	assert.Equal(t, "application/json", d.ContentType)
	assert.Equal(t, amqp.Persistent, d.DeliveryMode)
	delete(d.Headers, "x-delivery-count") // quorum queues add it on basic.get
	assert.Equal(t, amqp.Table{"trace": "t", "x-switchyard-key": "k1"}, d.Headers)
	assert.Equal(t, []byte(`{"a":1}`), d.Body)

	// The queue type is the configured one: declaring it as classic fails.
	ch2 := rawChannel(t)
	_, err = ch2.QueueDeclare(topic+".billing", true, false, false, false, amqp.Table{"x-queue-type": "classic"})
	var ae *amqp.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, amqp.PreconditionFailed, ae.Code)

	// And a Broker configured for classic queues says so too.
	classic := openTest(t, testURL(t, "queue_type=classic"))
	err = classic.CreateGroup(ctx, topic, "billing")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, amqp.PreconditionFailed, ae.Code)
	assert.Contains(t, err.Error(), topic+".billing")
}

// TestInteropWithPlainAMQP: a message published by another client to the
// topic's exchange arrives with its headers as metadata.
func TestInteropWithPlainAMQP(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	b := openTest(t, testURL(t, ""))
	c := newCollector()
	_, err := b.Subscribe(ctx, topic, "g", func(_ context.Context, m *pubsub.Message) error { c.add(m); return nil })
	require.NoError(t, err)

	ch := rawChannel(t)
	require.NoError(t, ch.Confirm(false))
	dc, err := ch.PublishWithDeferredConfirm(topic, "", false, false, amqp.Publishing{
		MessageId: "from-python", ContentType: "text/plain", Headers: amqp.Table{"lang": "python", "n": int64(3)}, Body: []byte("hi"),
	})
	require.NoError(t, err)
	require.True(t, dc.Wait())
	m := c.waitN(t, 1)[0].msg
	assert.Equal(t, &pubsub.Message{ID: "from-python", Metadata: map[string]string{"lang": "python", "n": "3", "content-type": "text/plain"}, Payload: []byte("hi"), Attempt: 1}, m)
}

// TestPublishWithoutGroups: publishing to a topic without groups succeeds and
// keeps nothing; a group created afterwards gets only later messages.
func TestPublishWithoutGroups(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "late")
	b := openTest(t, testURL(t, ""))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "lost"}))
	require.NoError(t, rawChannel(t).ExchangeDeclarePassive(topic, "fanout", true, false, false, false, nil), "Publish declared the exchange")

	require.NoError(t, b.CreateGroup(ctx, topic, "late"))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "kept"}))
	c := newCollector()
	_, err := b.Subscribe(ctx, topic, "late", func(_ context.Context, m *pubsub.Message) error { c.add(m); return nil })
	require.NoError(t, err)
	c.waitN(t, 1)
	time.Sleep(300 * time.Millisecond)
	calls := c.snapshot()
	require.Len(t, calls, 1)
	assert.Equal(t, "kept", calls[0].msg.ID)
}

// TestRetryQueues: failures are retried through per-delay retry queues, with
// exact attempt numbers and delays no shorter than asked.
func TestRetryQueues(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			ctx := testCtx(t)
			topic := uniqueTopic(t, "g")
			b := openTest(t, testURL(t, "queue_type="+string(qt)))
			c := newCollector()
			const initial = 100 * time.Millisecond
			_, err := b.Subscribe(ctx, topic, "g", func(_ context.Context, m *pubsub.Message) error {
				c.add(m)
				if m.Attempt < 4 {
					return errors.New("not yet")
				}
				return nil
			}, pubsub.WithBackoff(initial, time.Second), pubsub.WithMaxAttempts(10))
			require.NoError(t, err)
			require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "r1", Metadata: map[string]string{"m": "v"}}))

			calls := c.waitN(t, 4)
			time.Sleep(500 * time.Millisecond)
			calls = c.snapshot()
			require.Len(t, calls, 4, "no delivery after the success")
			for i, call := range calls {
				assert.Equal(t, "r1", call.msg.ID)
				assert.Equal(t, i+1, call.msg.Attempt)
				assert.Equal(t, map[string]string{"m": "v"}, call.msg.Metadata)
			}
			// Attempt n failed: the delay is at least initial·2^(n-1)/2.
			for n := 1; n < 4; n++ {
				min := initial << (n - 1) / 2
				assert.GreaterOrEqual(t, calls[n].at.Sub(calls[n-1].at), min, "delay after attempt %d", n)
			}

			// The retry queues are the documented ones, and empty now.
			b.retryMu.Lock()
			var names []string
			for name := range b.retryDeclared {
				names = append(names, name)
			}
			b.retryMu.Unlock()
			require.NotEmpty(t, names)
			ch := rawChannel(t)
			for _, name := range names {
				var ms int64
				_, err := fmt.Sscanf(name, topic+".g.retry.%d", &ms)
				require.NoError(t, err, name)
				bucket := time.Duration(ms) * time.Millisecond
				assert.Equal(t, bucket, retryBucket(bucket))
				q, err := ch.QueueDeclare(name, true, false, false, false, retryQueueArgs(qt, topic+".g", bucket))
				require.NoError(t, err, "retry queue %s has the documented arguments", name)
				assert.Equal(t, 0, q.Messages)
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
	first := openTest(t, testURL(t, ""))
	failed := make(chan time.Time, 1)
	_, err := first.Subscribe(ctx, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		if m.Attempt == 1 {
			failed <- time.Now()
		}
		return errors.New("fail")
	}, pubsub.WithBackoff(2*time.Second, 2*time.Second))
	require.NoError(t, err)
	require.NoError(t, first.Publish(ctx, topic, &pubsub.Message{ID: "survivor"}))
	failedAt := <-failed
	// Give the retry copy time to be confirmed, then drop the process.
	time.Sleep(300 * time.Millisecond)
	_ = first.subLink.close()
	_ = first.pubLink.close()

	second := openTest(t, testURL(t, ""))
	c := newCollector()
	_, err = second.Subscribe(ctx, topic, "g", func(_ context.Context, m *pubsub.Message) error { c.add(m); return nil })
	require.NoError(t, err)
	call := c.waitN(t, 1)[0]
	assert.Equal(t, "survivor", call.msg.ID)
	assert.Equal(t, 2, call.msg.Attempt)
	assert.GreaterOrEqual(t, call.at.Sub(failedAt), time.Second, "the backoff (1s..2s) was kept")
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, c.snapshot(), 1)
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
			a := openTest(t, rawURL)
			running := make(chan *pubsub.Message, 1)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			_, err := a.Subscribe(ctx, topic, "workers", func(_ context.Context, m *pubsub.Message) error {
				if m.Attempt == 1 {
					return errors.New("first attempt fails")
				}
				running <- m
				<-release
				return nil
			}, pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond), pubsub.WithConcurrency(1))
			require.NoError(t, err)
			require.NoError(t, a.Publish(ctx, topic, &pubsub.Message{ID: "job-1"}))
			select {
			case m := <-running:
				require.Equal(t, 2, m.Attempt)
			case <-time.After(waitTimeout):
				t.Fatal("member a never ran attempt 2")
			}

			bMember := openTest(t, rawURL)
			c := newCollector()
			_, err = bMember.Subscribe(ctx, topic, "workers", func(_ context.Context, m *pubsub.Message) error { c.add(m); return nil })
			require.NoError(t, err)
			// Kill a's consuming connection for good, as a crash would.
			_ = a.subLink.close()

			call := c.waitN(t, 1)[0]
			assert.Equal(t, "job-1", call.msg.ID)
			assert.Equal(t, 3, call.msg.Attempt, "attempt 2 was interrupted; the count goes on")
			time.Sleep(300 * time.Millisecond)
			assert.Len(t, c.snapshot(), 1)
		})
	}
}

// TestSettleAfterReceiverClose: a receiver's Close hands its deliveries back;
// settling them afterwards fails with ErrClosed.
func TestSettleAfterReceiverClose(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	b := openTest(t, testURL(t, ""))
	require.NoError(t, b.CreateGroup(ctx, topic, "g"))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"}))
	cfg, err := pubsub.NewSubscribeConfig(topic, "g")
	require.NoError(t, err)
	r, err := b.startReceiver(ctx, cfg)
	require.NoError(t, err)
	d1, err := r.Receive(ctx)
	require.NoError(t, err)
	d2, err := r.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, sortedIDs(d1.Message(), d2.Message()))
	assert.Equal(t, 1, d1.Message().Attempt)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close(), "Close is idempotent")

	assert.ErrorIs(t, d1.Ack(ctx), pubsub.ErrClosed)
	assert.ErrorIs(t, d2.Retry(ctx, time.Millisecond), pubsub.ErrClosed)
	_, err = r.Receive(ctx)
	assert.ErrorIs(t, err, pubsub.ErrClosed)

	r2, err := b.startReceiver(ctx, cfg)
	require.NoError(t, err)
	defer r2.Close()
	var again []*pubsub.Message
	for range 2 {
		d, err := r2.Receive(ctx)
		require.NoError(t, err)
		again = append(again, d.Message())
		require.NoError(t, d.Ack(ctx))
	}
	assert.Equal(t, []string{"a", "b"}, sortedIDs(again...))
	for _, m := range again {
		assert.Equal(t, 2, m.Attempt, "handed back unsettled: redelivered as attempt 2")
	}
}

func sortedIDs(ms ...*pubsub.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	sort.Strings(out)
	return out
}
