package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// parkLog records the parked outcomes an observer is told of.
type parkLog struct {
	mu     sync.Mutex
	errs   []error
	notify chan struct{}
}

func newParkLog() *parkLog { return &parkLog{notify: make(chan struct{}, 10)} }

func (p *parkLog) observer() pubsub.SubscribeOption {
	return pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, s pubsub.Settlement) {
		if s.Outcome == pubsub.OutcomeParked {
			p.mu.Lock()
			p.errs = append(p.errs, s.Err)
			p.mu.Unlock()
			p.notify <- struct{}{}
		}
	}})
}

func (p *parkLog) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.notify:
	case <-time.After(waitTimeout):
		t.Fatal("no message was parked")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errs[len(p.errs)-1]
}

// waitDeadLetters waits until group of topic holds n dead letters.
func waitDeadLetters(t *testing.T, c *pubsub.Client, topic, group string, n int) []*pubsub.Message {
	t.Helper()
	ctx := testCtx(t)
	var got []*pubsub.Message
	deadline := time.Now().Add(waitTimeout)
	for {
		var err error
		got, err = c.ListDeadLetters(ctx, topic, group, 0)
		require.NoError(t, err)
		if len(got) == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the broker: no event to wait on
	}
	require.Len(t, got, n)
	return got
}

// TestDeadLetterQueueMissing: with the group's dead-letter queue deleted,
// the dead letter's mandatory publish comes back unroutable, so storing
// fails and the message is parked, unacked; neither storing nor a new
// member's Subscribe makes the queue again (it would hide the problem);
// CreateGroup does, and the parked message is stored.
func TestDeadLetterQueueMissing(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	c := openTest(t, testURL(t, ""))
	require.NoError(t, c.CreateGroup(ctx, topic, "g"))
	ch := rawChannel(t)
	dq := deadQueueName(topic, "g")
	_, err := ch.QueueDelete(dq, false, false, false)
	require.NoError(t, err)

	parked := newParkLog()
	calls := newCollector()
	subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		calls.add(m)
		return pubsub.Permanent(errors.New("poison"))
	}, pubsub.WithBackoff(20*time.Millisecond, 50*time.Millisecond), parked.observer())
	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "poison-1"}))
	err = parked.wait(t)
	assert.ErrorContains(t, err, "basic.return")
	assert.ErrorContains(t, err, "NO_ROUTE")
	assert.ErrorContains(t, err, dq)

	subscribe(t, ctx, openTest(t, testURL(t, "")), topic, "g", calls.handler) // a new member of the existing group
	time.Sleep(200 * time.Millisecond)                                        // parking retries meanwhile
	_, err = rawChannel(t).QueueDeclarePassive(dq, true, false, false, false, nil)
	var ae *amqp.Error
	require.ErrorAs(t, err, &ae, "the dead-letter queue was made again")
	assert.Equal(t, amqp.NotFound, ae.Code)
	assert.Len(t, calls.snapshot(), 1, "parked: no handler runs it again, the new member does not get it")

	require.NoError(t, c.CreateGroup(ctx, topic, "g"), "repairs the group")
	dl := waitDeadLetters(t, c, topic, "g", 1)[0]
	assert.Equal(t, "poison-1", dl.ID)
	assert.Equal(t, "poison", dl.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Len(t, calls.snapshot(), 1)
}

// TestDeadLetterLimit: a group keeps dead_letter_limit dead letters; one
// more is refused (basic.nack: the queue's reject-publish overflow), so it
// is parked until room is made.
func TestDeadLetterLimit(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	c := openTest(t, testURL(t, "dead_letter_limit=2"))
	parked := newParkLog()
	subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		return pubsub.Permanent(errors.New("rejected " + m.ID))
	}, pubsub.WithConcurrency(1), pubsub.WithBackoff(20*time.Millisecond, 50*time.Millisecond), parked.observer())
	for i, id := range []string{"d1", "d2"} {
		require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: id}))
		waitDeadLetters(t, c, topic, "g", i+1)
	}
	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "d3"}))
	err := parked.wait(t)
	assert.ErrorContains(t, err, "basic.nack")
	assert.Equal(t, []string{"d1", "d2"}, ids(waitDeadLetters(t, c, topic, "g", 2)), "the third is not stored")

	n, err := c.PurgeDeadLetters(ctx, topic, "g", "d1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Equal(t, []string{"d2", "d3"}, ids(waitDeadLetters(t, c, topic, "g", 2)), "stored once there was room, oldest first")
}

// TestListDeadLettersRepeatedly: listing leaves the dead letters in place
// and in order however often it is done. The dead-letter queue is a
// classic queue: returning a message there counts no delivery, whereas a
// quorum queue would count one per listing and, on RabbitMQ 4, drop or
// dead-letter a dead letter listed 20 times.
func TestListDeadLettersRepeatedly(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	c := openTest(t, testURL(t, ""))
	subscribe(t, ctx, c, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		return pubsub.Permanent(errors.New("no"))
	}, pubsub.WithConcurrency(1))
	for i, id := range []string{"d1", "d2", "d3"} {
		require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: id, Payload: []byte(id)}))
		waitDeadLetters(t, c, topic, "g", i+1)
	}
	for i := range 25 {
		all, err := c.ListDeadLetters(ctx, topic, "g", 0)
		require.NoError(t, err)
		require.Equal(t, []string{"d1", "d2", "d3"}, ids(all), "listing %d", i+1)
		two, err := c.ListDeadLetters(ctx, topic, "g", 2)
		require.NoError(t, err)
		require.Equal(t, []string{"d1", "d2"}, ids(two), "listing %d with a limit", i+1)
	}
	for _, m := range waitDeadLetters(t, c, topic, "g", 3) {
		assert.Equal(t, 0, m.Attempt)
		assert.Equal(t, []byte(m.ID), m.Payload)
	}
	n, err := c.PurgeDeadLetters(ctx, topic, "g")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

// TestBrokerDeadLettersPastDeliveryLimit: a message the broker takes away
// from a quorum group queue past its delivery limit (20 by default on
// RabbitMQ 4; set here to 1 with a policy, as an operator would on 3.x)
// goes to the group's dead letters, not to the bin, and is listed with
// the dead-letter metadata filled in from the broker's headers.
func TestBrokerDeadLettersPastDeliveryLimit(t *testing.T) {
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("needs rabbitmqctl to set a delivery-limit policy")
	}
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	c := openTest(t, testURL(t, ""))
	require.NoError(t, c.CreateGroup(ctx, topic, "g"))
	q := groupQueueName(topic, "g")
	var r [4]byte
	_, _ = rand.Read(r[:])
	policy := "sytest-" + hex.EncodeToString(r[:])
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "set_policy", "--apply-to", "queues", policy, "^"+regexp.QuoteMeta(q)+"$", `{"delivery-limit":1}`).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "-q", "clear_policy", policy).Run() })

	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "poison", Key: "k", Metadata: map[string]string{"app": "a"}}))
	ch := rawChannel(t)
	require.NoError(t, ch.Qos(1, 0, false))
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	require.NoError(t, err)
	for range 2 { // a consumer crashing on it twice: delivery count 2 > 1
		select {
		case d := <-deliveries:
			require.NoError(t, d.Nack(false, true))
		case <-time.After(waitTimeout):
			t.Fatal("not delivered")
		}
	}
	dl := waitDeadLetters(t, c, topic, "g", 1)[0]
	assert.Equal(t, "poison", dl.ID)
	assert.Equal(t, "k", dl.Key)
	assert.Equal(t, "a", dl.Metadata["app"])
	assert.Equal(t, "rabbitmq: dead-lettered by the broker (delivery_limit)", dl.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, topic, dl.Metadata[pubsub.MetadataOriginalTopic])
	assert.Equal(t, "g", dl.Metadata[pubsub.MetadataGroup])
	_, err = time.Parse(time.RFC3339Nano, dl.Metadata[pubsub.MetadataDeadLetterTime])
	assert.NoError(t, err, "time from x-death")
	attempts, err := strconv.Atoi(dl.Metadata[pubsub.MetadataAttempts])
	require.NoError(t, err)
	assert.GreaterOrEqual(t, attempts, 1)
}
