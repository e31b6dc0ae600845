package rabbitmq

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// benchWatermill is watermill-amqp's durable pub/sub configuration with
// confirms on and a quorum queue; otherwise its defaults (prefetch 1, one
// confirm awaited at a time). Publishing uses the same goroutines and
// batches as benchSwitchyard.
func benchWatermill(b *testing.B, rawURL string, payload []byte) {
	topic := uniqueTopic(b, benchGroup)
	cfg := wamqp.NewDurablePubSubConfig(rawURL, func(topic string) string { return groupQueueName(topic, benchGroup) })
	cfg.Publish.ConfirmDelivery = true
	cfg.Queue.Arguments = amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}
	logger := watermill.NopLogger{}
	pub, err := wamqp.NewPublisher(cfg, logger)
	require.NoError(b, err)
	defer pub.Close()
	sub, err := wamqp.NewSubscriber(cfg, logger)
	require.NoError(b, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(b, err)
	var consumed atomic.Int64
	go func() {
		for m := range msgs {
			m.Ack()
			consumed.Add(1)
		}
	}()

	b.ResetTimer()
	start := time.Now()
	publishInBatches(b, func(n int) error {
		out := make([]*message.Message, n)
		for k := range out {
			out[k] = message.NewMessage(watermill.NewUUID(), payload)
		}
		return pub.Publish(topic, out...)
	})
	waitCount(b, &consumed, int64(b.N))
	reportRate(b, start)
}
