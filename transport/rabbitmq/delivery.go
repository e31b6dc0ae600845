package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// delivery is one message delivered to a subscription.
type delivery struct {
	s       *subscription
	c       *consumer // the consumer it came on
	d       amqp.Delivery
	id      string // its ID (derived when it has no message_id)
	attempt int

	// Guarded by s.mu.
	done     bool        // settled, or handed back by Close
	busy     bool        // a settlement is in progress
	fallback *time.Timer // a failed Retry returns it to the queue when it fires
}

// Message implements driver.Delivery: a new copy on each call.
func (d *delivery) Message() *driver.Message {
	m := fromDelivery(&d.d, d.s.b.cfg.QueueType)
	m.ID = d.id
	return m
}

// begin starts a settlement, or says why there can be none.
func (d *delivery) begin(what string) error {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case d.done || d.fallback != nil:
		return fmt.Errorf("rabbitmq: %s message %s of queue %s: already settled or handed back: %w", what, d.id, s.queue, driver.ErrClosed)
	case d.busy:
		return fmt.Errorf("rabbitmq: %s message %s of queue %s: another settlement is in progress", what, d.id, s.queue)
	}
	d.busy = true
	return nil
}

// finish ends a settlement: settled (the message left the subscription's
// hands) or not (it stays delivered and unsettled).
func (d *delivery) finish(settled bool) {
	s := d.s
	s.mu.Lock()
	d.busy = false
	if settled {
		d.done = true
		delete(s.unsettled, d)
		if tw := s.twins[d]; tw != nil {
			// d's run did not succeed (or its ack went through): its held
			// redelivery goes to Receive.
			delete(s.twins, d)
			if !tw.done {
				s.ready = append(s.ready, tw)
				close(s.changed)
				s.changed = make(chan struct{})
			}
		}
	}
	s.mu.Unlock()
}

// takeTwin removes and returns the redelivery held back for d, if any.
func (d *delivery) takeTwin() *delivery {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	tw := s.twins[d]
	delete(s.twins, d)
	return tw
}

// gone reports, with an error to return, whether d's channel is closed: the
// broker then took the message back and will deliver it again, so that a
// copy would deliver it twice.
func (d *delivery) gone(what string) (bool, error) {
	if !d.c.ch.IsClosed() {
		return false, nil
	}
	d.finish(true)
	return true, fmt.Errorf("rabbitmq: %s message %s of queue %s: consumer channel closed, the broker delivers it again", what, d.id, d.s.queue)
}

// Ack implements driver.Delivery.
func (d *delivery) Ack(context.Context) error {
	if err := d.begin("ack"); err != nil {
		return err
	}
	err := d.d.Ack(false)
	if err != nil {
		if tw := d.takeTwin(); tw != nil {
			// The broker reclaimed d (consumer_timeout) and delivered it
			// again, held back by holdTwin: the handler succeeded, so
			// that redelivery is acked instead of run.
			twErr := tw.Ack(context.Background())
			d.finish(true)
			if twErr == nil {
				return nil
			}
			return fmt.Errorf("rabbitmq: ack message %s of queue %s and its redelivery (the broker delivers it again): %w", d.id, d.s.queue, errors.Join(err, twErr))
		}
	}
	d.finish(true)
	if err != nil {
		if d.c.ch.IsClosed() {
			d.s.rememberHandled(d.id)
			return fmt.Errorf("rabbitmq: ack message %s of queue %s: %w (the broker delivers it again; this subscription acks that redelivery without running the handler)", d.id, d.s.queue, err)
		}
		return fmt.Errorf("rabbitmq: ack message %s of queue %s (the broker delivers it again): %w", d.id, d.s.queue, err)
	}
	return nil
}

// Retry implements driver.Delivery: it publishes a copy with attempt as its
// x-switchyard-attempt to the shared retry queue for delay (rounded up to a
// bucket, see retryBucket; a delay of 0 goes straight back to the group's
// queue), mandatory and confirmed, and only then acks the original. A copy
// returned unroutable (its retry queue was deleted or expired) makes it
// declare the retry queue again and publish once more. If the copy still
// cannot be published, the original is returned to the queue when delay has
// passed (basic.reject with requeue, which quorum queues count as a failed
// delivery, so that Attempt still grows; classic queues before RabbitMQ 4.3
// only flag it), and the error says so; Close returns it at once.
func (d *delivery) Retry(ctx context.Context, delay time.Duration, attempt int) error {
	if err := d.begin("retry"); err != nil {
		return err
	}
	if gone, err := d.gone("retry"); gone {
		return err
	}
	b := d.s.b
	err := b.withTimeout(ctx, "retry message "+d.id, func(ctx context.Context) error {
		return b.sendRetry(ctx, d, delay, attempt)
	})
	if err != nil {
		d.fallBackAfter(delay)
		return fmt.Errorf("rabbitmq: retry message %s of queue %s: copy not accepted, the message returns to the queue after %v instead: %w", d.id, d.s.queue, delay, err)
	}
	ackErr := d.d.Ack(false)
	d.finish(true)
	if ackErr != nil {
		return fmt.Errorf("rabbitmq: ack message %s of queue %s after its retry copy was accepted (it will be delivered twice): %w", d.id, d.s.queue, ackErr)
	}
	return nil
}

// sendRetry publishes d's retry copy.
func (b *broker) sendRetry(ctx context.Context, d *delivery, delay time.Duration, attempt int) error {
	msg := []amqp.Publishing{copyOf(&d.d, d.id, attempt)}
	if delay <= 0 {
		return b.pub.send(ctx, target{key: d.s.queue, mandatory: true}, msg)
	}
	bucket := retryBucket(delay)
	for again := false; ; again = true {
		exchange, err := b.retryTarget(ctx, bucket, again)
		if err != nil {
			return err
		}
		err = b.pub.send(ctx, target{exchange: exchange, key: d.s.queue, mandatory: true}, msg)
		if err == nil {
			return nil
		}
		b.forgetRetry(bucket)
		if again || !(errors.Is(err, errReturned) || isCode(err, amqp.NotFound)) {
			return err
		}
		// The retry queue (or its exchange) is gone: declare it again.
	}
}

// fallBackAfter arranges for d to return to the queue after delay.
func (d *delivery) fallBackAfter(delay time.Duration) {
	s := d.s
	s.mu.Lock()
	d.busy = false
	d.fallback = time.AfterFunc(delay, d.fallNow)
	s.mu.Unlock()
}

// fallNow returns d to the queue now, counting the failed delivery (see
// Retry), unless that was done already.
func (d *delivery) fallNow() {
	s := d.s
	s.mu.Lock()
	t := d.fallback
	if d.done || t == nil {
		s.mu.Unlock()
		return
	}
	d.done = true
	delete(s.unsettled, d)
	s.mu.Unlock()
	t.Stop()
	_ = d.d.Reject(true)
}

// Release implements driver.Delivery: it hands the message back untouched,
// publishing a copy with the same Attempt to the group's queue (mandatory,
// confirmed) and acking the original, so that no RabbitMQ version counts a
// delivery. If the copy is not accepted, the message is returned to the
// queue (basic.nack with requeue; RabbitMQ 4.3 does not count that, quorum
// queues of earlier versions do).
func (d *delivery) Release(ctx context.Context) error {
	if err := d.begin("release"); err != nil {
		return err
	}
	if gone, err := d.gone("release"); gone {
		return err
	}
	b := d.s.b
	err := b.withTimeout(ctx, "release message "+d.id, func(ctx context.Context) error {
		return b.pub.send(ctx, target{key: d.s.queue, mandatory: true}, []amqp.Publishing{copyOf(&d.d, d.id, d.attempt)})
	})
	if err != nil {
		nackErr := d.d.Nack(false, true)
		d.finish(true)
		if nackErr != nil {
			return fmt.Errorf("rabbitmq: release message %s of queue %s: %w (the broker delivers it again)", d.id, d.s.queue, nackErr)
		}
		d.s.log.Warn("rabbitmq: message handed back by returning it to the queue (quorum queues before RabbitMQ 4.3 count a delivery)",
			"topic", d.s.topic, "group", d.s.group, "message_id", d.id, "err", err)
		return nil
	}
	ackErr := d.d.Ack(false)
	d.finish(true)
	if ackErr != nil {
		return fmt.Errorf("rabbitmq: ack message %s of queue %s after handing back a copy (it will be delivered twice): %w", d.id, d.s.queue, ackErr)
	}
	return nil
}

// DeadLetter implements driver.Delivery: it publishes dl to the group's
// dead-letter queue through the default exchange, mandatory and confirmed,
// then acks the original. A return (the dead-letter queue does not exist)
// or a nack (it is full: x-max-length with reject-publish) is an error,
// and the message stays delivered and unsettled. The dead-letter queue is
// never declared here: a deleted one stays missing until CreateGroup.
func (d *delivery) DeadLetter(ctx context.Context, dl *driver.Message) error {
	if err := d.begin("dead-letter"); err != nil {
		return err
	}
	if gone, err := d.gone("dead-letter"); gone {
		return err
	}
	b := d.s.b
	out := toPublishing(dl)
	if out.MessageId == "" {
		out.MessageId = d.id
	}
	err := b.withTimeout(ctx, "dead-letter message "+d.id, func(ctx context.Context) error {
		return b.pub.send(ctx, target{key: d.s.deadQueue, mandatory: true}, []amqp.Publishing{out})
	})
	if err != nil {
		d.finish(false)
		return fmt.Errorf("rabbitmq: store dead letter %s in queue %s: %w", d.id, d.s.deadQueue, err)
	}
	ackErr := d.d.Ack(false)
	d.finish(true)
	if ackErr != nil {
		return fmt.Errorf("rabbitmq: ack message %s of queue %s after storing its dead letter (it will be delivered again): %w", d.id, d.s.queue, ackErr)
	}
	return nil
}
