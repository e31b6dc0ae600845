package rabbitmq

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// directReplyTo is RabbitMQ's direct reply-to pseudo-queue: consuming it
// (without acknowledgements) receives only replies addressed to it.
const directReplyTo = "amq.rabbitmq.reply-to"

// cancelConsumer cancels the consumer tag of ch, whose deliveries come on
// deliveries, and returns what it delivered and was not read yet. The
// broker may send deliveries for a cancelled consumer after its cancel-ok
// (those it dispatched before it took the cancel in), and amqp091 drops
// deliveries for a tag it no longer knows, leaving them unacknowledged
// until the channel closes, which returns them to the queue and counts a
// delivery. So the tag is taken again at once by a consumer of the direct
// reply-to pseudo-queue, which receives nothing of its own: the late
// deliveries reach it, before its consume-ok. Deliveries are returned in
// the order they came.
func cancelConsumer(ch *amqp.Channel, tag string, deliveries <-chan amqp.Delivery) []amqp.Delivery {
	if err := ch.Cancel(tag, false); err != nil {
		return nil // the channel is closed: the broker took everything back
	}
	var got []amqp.Delivery
	for d := range deliveries {
		got = append(got, d) // amqp091 passes on what it buffered, then closes
	}
	late, err := ch.Consume(directReplyTo, tag, true, false, false, false, nil)
	if err != nil {
		return got
	}
	if err := ch.Cancel(tag, false); err != nil {
		return got
	}
	for d := range late {
		got = append(got, d)
	}
	return got
}

// handBack hands deliveries ds of queue back untouched: a copy of each,
// with its Attempt, is published to queue (mandatory, confirmed) on on, or
// on the shared publishing channel when on is nil; then the originals are
// acked, with one basic.ack (multiple) when exact says that ds are all the
// unsettled deliveries of their channel, so that one command settles them
// all. A delivery whose copy is not accepted is returned to the queue
// instead (basic.nack with requeue), which quorum queues count as a
// delivery before RabbitMQ 4.3; the error then says why. The deliveries'
// channel must be open.
func (b *broker) handBack(ctx context.Context, on *confirmChannel, queue string, ds []amqp.Delivery, exact bool) error {
	copies := make([]amqp.Publishing, len(ds))
	for i := range ds {
		m := fromDelivery(&ds[i], b.cfg.QueueType)
		copies[i] = copyOf(&ds[i], m.ID, m.Attempt)
	}
	t := target{key: queue, mandatory: true}
	var err error
	if on != nil {
		err = sendOn(ctx, on, t, copies)
	} else {
		err = b.pub.send(ctx, t, copies)
	}
	failed := map[int]bool{}
	var be *driver.BatchError
	switch {
	case err == nil:
	case errors.As(err, &be):
		for _, i := range be.Failed {
			failed[i] = true
		}
	default:
		for i := range ds {
			failed[i] = true
		}
	}
	var last *amqp.Delivery // the accepted one with the highest tag
	for i := range ds {
		switch {
		case failed[i]:
			_ = ds[i].Nack(false, true)
		case !exact:
			_ = ds[i].Ack(false)
		case last == nil || ds[i].DeliveryTag > last.DeliveryTag:
			last = &ds[i]
		}
	}
	if last != nil {
		_ = last.Ack(true) // every accepted one up to its tag: nothing else is unsettled
	}
	if err != nil {
		return fmt.Errorf("rabbitmq: hand back %d of %d messages of queue %q: %w", len(failed), len(ds), queue, err)
	}
	return nil
}
