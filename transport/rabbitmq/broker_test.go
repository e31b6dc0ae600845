package rabbitmq

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestTopologyAndWireFormat checks the documented topology and message
// mapping with a plain AMQP client.
func TestTopologyAndWireFormat(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "billing")
	c := openTest(t, testURL(t, "dead_letter_limit=1234"))
	require.NoError(t, c.CreateGroup(ctx, topic, "billing"))
	require.NoError(t, c.CreateGroup(ctx, topic, "billing"), "CreateGroup is idempotent")

	ch := rawChannel(t)
	require.NoError(t, ch.ExchangeDeclarePassive(topic, "fanout", true, false, false, false, nil), "a durable fanout exchange named after the topic")
	q, err := ch.QueueDeclare(topic+":billing", true, false, false, false, groupQueueArgs(QueueQuorum, topic+":billing:dead"))
	require.NoError(t, err, "a durable quorum queue <topic>:<group> with the documented arguments")
	assert.Equal(t, 0, q.Messages)
	_, err = ch.QueueDeclare(topic+":billing:dead", true, false, false, false, amqp.Table{"x-queue-type": "classic", "x-max-length": int64(1234), "x-overflow": "reject-publish"})
	require.NoError(t, err, "a durable classic queue <topic>:<group>:dead holding dead_letter_limit messages")

	sent := &pubsub.Message{ID: "wire-1", Key: "k1", Metadata: map[string]string{"trace": "t", "content-type": "application/json"}, Payload: []byte(`{"a":1}`)}
	require.NoError(t, c.Publish(ctx, topic, sent))
	d, ok, err := ch.Get(topic+":billing", true)
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
	_, err = ch2.QueueDeclare(topic+":billing", true, false, false, false, groupQueueArgs(QueueClassic, topic+":billing:dead"))
	var ae *amqp.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, amqp.PreconditionFailed, ae.Code)

	// And a broker configured for classic queues says so too, naming the
	// queue; a dead_letter_limit of its own does not matter.
	classic := openTest(t, testURL(t, "queue_type=classic&dead_letter_limit=99"))
	err = classic.CreateGroup(ctx, topic, "billing")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, amqp.PreconditionFailed, ae.Code)
	assert.Contains(t, err.Error(), topic+":billing")
	other := openTest(t, testURL(t, "dead_letter_limit=99"))
	require.NoError(t, other.CreateGroup(ctx, topic, "billing"), "an existing dead-letter queue keeps its limit")
}

// TestInteropWithPlainAMQP: a message published by another client to the
// topic's exchange arrives with its headers as portable metadata, and one
// without message_id gets an ID derived from it: the same in every group,
// on a redelivery, and on its dead letter, which can be replayed by it.
func TestInteropWithPlainAMQP(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "a", "b")
	c := openTest(t, testURL(t, ""))
	a, b := newCollector(), newCollector()
	subscribe(t, ctx, c, topic, "a", a.handler)
	subscribe(t, ctx, c, topic, "b", func(ctx context.Context, m *pubsub.Message) error {
		if m.ID == "from-python" {
			return nil
		}
		b.add(m)
		if m.Attempt == 1 {
			return errors.New("once")
		}
		return pubsub.Permanent(errors.New("then for good"))
	}, pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond))

	ch := rawChannel(t)
	require.NoError(t, ch.Confirm(false))
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	publish := func(p amqp.Publishing) {
		dc, err := ch.PublishWithDeferredConfirm(topic, "", false, false, p)
		require.NoError(t, err)
		require.True(t, dc.Wait())
	}
	publish(amqp.Publishing{
		MessageId: "from-python", ContentType: "text/plain", Body: []byte("hi"),
		Headers: amqp.Table{"lang": "python", "n": int64(3), "price": amqp.Decimal{Scale: 1, Value: 5}, "at": at, "ok": true,
			"tags": []any{"a", int32(1)}, "meta": amqp.Table{"k": "v"}, "raw": []byte("bytes")},
	})
	m := a.waitN(t, 1)[0].msg
	assert.Equal(t, &pubsub.Message{ID: "from-python", Metadata: map[string]string{
		"lang": "python", "n": "3", "price": "0.5", "at": "2024-05-01T12:00:00Z", "ok": "true",
		"tags": `["a",1]`, "meta": `{"k":"v"}`, "raw": "bytes", "content-type": "text/plain",
	}, Payload: []byte("hi"), Attempt: 1}, m)

	publish(amqp.Publishing{Body: []byte("no id"), Headers: amqp.Table{"n": int32(1)}})
	first := a.waitN(t, 2)[1].msg
	assert.Regexp(t, `^amqp-[0-9a-f]{32}$`, first.ID, "never an empty ID")
	tries := b.waitN(t, 2)
	assert.Equal(t, []string{first.ID, first.ID}, []string{tries[0].msg.ID, tries[1].msg.ID}, "the same ID in another group and on a redelivery")
	assert.Equal(t, []int{1, 2}, []int{tries[0].msg.Attempt, tries[1].msg.Attempt})

	var dead []*pubsub.Message
	require.Eventually(t, func() bool {
		var err error
		dead, err = c.ListDeadLetters(ctx, topic, "b", 0)
		return err == nil && len(dead) == 1
	}, waitTimeout, 20*time.Millisecond)
	assert.Equal(t, first.ID, dead[0].ID, "the dead letter carries the derived ID")
	n, err := c.ReplayDeadLetters(ctx, topic, "b", first.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "replayed by its derived ID")
	replayed := b.waitN(t, 3)[2].msg
	assert.Equal(t, first.ID, replayed.ID)
	assert.Equal(t, 1, replayed.Attempt)
}

// TestPublishWithoutGroups: publishing to a topic without groups succeeds and
// keeps nothing; a group created afterwards gets only later messages.
func TestPublishWithoutGroups(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "late")
	c := openTest(t, testURL(t, ""))
	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "lost"}))
	require.NoError(t, rawChannel(t).ExchangeDeclarePassive(topic, "fanout", true, false, false, false, nil), "Publish declared the exchange")

	require.NoError(t, c.CreateGroup(ctx, topic, "late"))
	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "kept"}))
	got := newCollector()
	subscribe(t, ctx, c, topic, "late", got.handler)
	got.waitN(t, 1)
	assert.Equal(t, []string{"kept"}, gotIDs(got.quiet(300*time.Millisecond)))
}

// TestPublishNackedIndexes: messages the broker refuses are named in a
// *pubsub.PublishError; the others were accepted. Here a queue bound to
// the topic holds two messages at most and refuses more (reject-publish).
func TestPublishNackedIndexes(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t)
	c := openTest(t, testURL(t, ""))
	require.NoError(t, c.Publish(ctx, topic)) // no messages: nothing to do
	require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "declares-the-exchange"}))
	ch := rawChannel(t)
	small := topic + ":small"
	_, err := ch.QueueDeclare(small, false, false, false, false, amqp.Table{"x-max-length": int64(2), "x-overflow": "reject-publish"})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = rawChannel(t).QueueDelete(small, false, false, false) })
	require.NoError(t, ch.QueueBind(small, "", topic, false, nil))

	msgs := newMessages("n", 5)
	err = c.Publish(ctx, topic, msgs...)
	var pe *pubsub.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []int{2, 3, 4}, pe.Failed)
	assert.Equal(t, []string{"n-002", "n-003", "n-004"}, pe.IDs)
	assert.ErrorContains(t, pe, "basic.nack")
	assert.Equal(t, 2, queueLength(t, small))
}

// TestDeleteGroup: DeleteGroup removes the group's queue and dead-letter
// queue; a missing group is ErrNotFound; CreateGroup repairs a deleted
// dead-letter queue.
func TestDeleteGroup(t *testing.T) {
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	c := openTest(t, testURL(t, ""))
	require.NoError(t, c.CreateGroup(ctx, topic, "g"))
	ch := rawChannel(t)
	_, err := ch.QueueDelete(deadQueueName(topic, "g"), false, false, false)
	require.NoError(t, err)
	_, err = c.ListDeadLetters(ctx, topic, "g", 0)
	assert.ErrorContains(t, err, "is missing")
	require.NoError(t, c.CreateGroup(ctx, topic, "g"), "repairs the dead-letter queue")
	dls, err := c.ListDeadLetters(ctx, topic, "g", 0)
	require.NoError(t, err)
	assert.Empty(t, dls)

	require.NoError(t, c.DeleteGroup(ctx, topic, "g"))
	for _, q := range []string{groupQueueName(topic, "g"), deadQueueName(topic, "g")} {
		_, err := rawChannel(t).QueueDeclarePassive(q, true, false, false, false, nil)
		var ae *amqp.Error
		require.ErrorAs(t, err, &ae, q)
		assert.Equal(t, amqp.NotFound, ae.Code, q)
	}
	assert.ErrorIs(t, c.DeleteGroup(ctx, topic, "g"), pubsub.ErrNotFound)
	_, err = c.PurgeDeadLetters(ctx, topic, "g")
	assert.ErrorIs(t, err, pubsub.ErrNotFound)
}

// TestAs: the client gives the publishing connection.
func TestAs(t *testing.T) {
	c := openTest(t, testURL(t, ""))
	var conn *amqp.Connection
	require.True(t, c.As(&conn))
	require.NotNil(t, conn)
	assert.False(t, conn.IsClosed())
	var ch *amqp.Channel
	assert.False(t, c.As(&ch), "only the documented types")
}
