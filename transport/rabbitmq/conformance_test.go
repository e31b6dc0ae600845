package rabbitmq

import (
	"strconv"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/transporttest"
)

// conformanceMaxBytes is the size limit the conformance brokers are opened
// with, so that the suite's oversize messages stay small.
const conformanceMaxBytes = 1 << 20

// TestConformance runs the transport conformance suite against the real
// RabbitMQ, with quorum queues (the default) and classic queues. Each
// subtest deletes the exchanges and queues it used.
func TestConformance(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			rawURL := testURL(t, "max_message_bytes="+strconv.Itoa(conformanceMaxBytes)+"&queue_type="+string(qt))
			recs := &recorders{rawURL: rawURL}
			transporttest.Run(t, transporttest.Harness{
				NewBroker: func(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker {
					return recordingClient{Client: openTest(t, rawURL, opts...), rec: recs.of(t)}
				},
				BreakDeadLetters: breakDeadLetters,
			}, transporttest.Features{MaxMessageBytes: conformanceMaxBytes})
		})
	}
}

// breakDeadLetters makes storing dead letters of group of topic fail: it
// takes the dead letters stored so far and deletes the group's dead-letter
// queue, so that the driver's mandatory publish comes back unroutable (the
// driver never declares a dead-letter queue on that path). restore declares
// the queue again, as the driver does, and puts the dead letters back.
func breakDeadLetters(t *testing.T, topic, group string) (restore func()) {
	ch := rawChannel(t)
	dq := deadQueueName(topic, group)
	var kept []amqp.Delivery
	for {
		d, ok, err := ch.Get(dq, false)
		require.NoError(t, err)
		if !ok {
			break
		}
		kept = append(kept, d)
	}
	_, err := ch.QueueDelete(dq, false, false, false)
	require.NoError(t, err)
	return func() {
		_, err := ch.QueueDeclare(dq, true, false, false, false, deadQueueArgs(DefaultDeadLetterLimit))
		require.NoError(t, err)
		require.NoError(t, ch.Confirm(false))
		for _, d := range kept {
			dc, err := ch.PublishWithDeferredConfirm("", dq, true, false, amqp.Publishing{
				Headers: d.Headers, ContentType: d.ContentType, DeliveryMode: amqp.Persistent, MessageId: d.MessageId, Body: d.Body,
			})
			require.NoError(t, err)
			require.True(t, dc.Wait())
		}
	}
}
