package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// The dead letters of a group are the messages of its dead-letter queue, a
// classic queue, in the order they were stored. The admin calls read them
// with a consumer on the admin connection without acknowledging them, then
// ack the ones they remove and return the others with one basic.nack
// (requeue), which puts them back in their places: a classic queue keeps
// the order and counts no delivery for that (a quorum queue would count
// one, and RabbitMQ 4 drops or dead-letters a message counted 20 times:
// a dead letter listed 20 times would be lost).

// adminConsumerTag is the consumer tag of the dead-letter admin.
const adminConsumerTag = "switchyard-dead-letters"

// takeIdle is how long takeDead waits for the next dead letter before it
// concludes that another client holds the rest (a concurrent listing).
const takeIdle = time.Second

// lookUpGroup returns an error wrapping driver.ErrNotFound if group of
// topic does not exist.
func lookUpGroup(ch *amqp.Channel, topic, group string) error {
	q := groupQueueName(topic, group)
	if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
		if isCode(err, amqp.NotFound) {
			return fmt.Errorf("rabbitmq: group %s of topic %s (queue %q): %w", group, topic, q, driver.ErrNotFound)
		}
		return fmt.Errorf("rabbitmq: look up queue %q: %w", q, err)
	}
	return nil
}

// takeDead takes up to limit (0: all) dead letters of group of topic, oldest
// first, on a channel of a, without acknowledging them; an unknown group is
// an error wrapping driver.ErrNotFound. The caller acks those it removes and
// returns the others with putBack.
func (b *broker) takeDead(ctx context.Context, a *adminConn, topic, group string, limit int) ([]amqp.Delivery, error) {
	ch, err := a.channel()
	if err != nil {
		return nil, err
	}
	if err := lookUpGroup(ch, topic, group); err != nil {
		return nil, err
	}
	dq := deadQueueName(topic, group)
	q, err := ch.QueueDeclarePassive(dq, true, false, false, false, nil)
	if err != nil {
		if isCode(err, amqp.NotFound) {
			return nil, fmt.Errorf("rabbitmq: dead-letter queue %q of group %s of topic %s is missing (deleted?); CreateGroup makes it again", dq, group, topic)
		}
		return nil, fmt.Errorf("rabbitmq: look up dead-letter queue %q: %w", dq, err)
	}
	want := q.Messages
	if limit > 0 {
		want = min(want, limit)
	}
	if want == 0 {
		return nil, nil
	}
	// A prefetch of want (when AMQP can carry it) keeps the broker from
	// sending more than asked.
	qos := want
	if qos > maxPrefetch {
		qos = 0 // unlimited: extra ones are put back
	}
	if err := ch.Qos(qos, 0, false); err != nil {
		return nil, err
	}
	deliveries, err := ch.Consume(dq, adminConsumerTag, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: consume dead-letter queue %q: %w", dq, err)
	}
	var got []amqp.Delivery
	idle := time.NewTimer(takeIdle)
	defer idle.Stop()
	for len(got) < want {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return nil, fmt.Errorf("rabbitmq: read dead-letter queue %q: channel closed", dq)
			}
			got = append(got, d)
			idle.Reset(takeIdle)
			continue
		case <-idle.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		break
	}
	if ch.IsClosed() {
		return nil, fmt.Errorf("rabbitmq: read dead-letter queue %q: channel closed", dq)
	}
	return append(got, cancelConsumer(ch, adminConsumerTag, deliveries)...), nil
}

// putBack returns the dead letters of ds not in removed to their queue, in
// their places, with one basic.nack (requeue) of the highest of them.
func putBack(ds []amqp.Delivery, removed map[int]bool) error {
	for i := len(ds) - 1; i >= 0; i-- {
		if !removed[i] {
			return ds[i].Nack(true, true)
		}
	}
	return nil
}

// deadLetterOf maps a dead letter of group of topic to a message with
// Attempt 0. Dead letters the broker stored itself (a message past a quorum
// queue's delivery limit) lack Switchyard's dead-letter metadata: the
// reason, time, origin and attempts are then filled in from the broker's
// headers.
func deadLetterOf(d *amqp.Delivery, qt QueueType, topic, group string) *driver.Message {
	m := fromDelivery(d, QueueClassic)
	m.Attempt = 0
	if _, ok := m.Metadata[driver.MetadataDeadLetterReason]; ok {
		return m
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	reason := "unknown"
	if r, ok := d.Headers["x-first-death-reason"]; ok {
		reason = headerString(r)
	}
	m.Metadata[driver.MetadataDeadLetterReason] = "rabbitmq: dead-lettered by the broker (" + reason + ")"
	m.Metadata[driver.MetadataOriginalTopic] = topic
	m.Metadata[driver.MetadataGroup] = group
	m.Metadata[driver.MetadataAttempts] = strconv.Itoa(fromDelivery(d, qt).Attempt)
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if first, ok := deaths[len(deaths)-1].(amqp.Table); ok {
			if at, ok := first["time"].(time.Time); ok {
				m.Metadata[driver.MetadataDeadLetterTime] = at.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	return m
}

// ListDeadLetters implements driver.DeadLetters: up to limit dead letters of
// the group (0: all), oldest first, left in place. The dead letters a
// listing holds are invisible to another listing of the same group at the
// same time, which may then return fewer.
func (b *broker) ListDeadLetters(ctx context.Context, topic, group string, limit int) ([]*driver.Message, error) {
	var out []*driver.Message
	err := b.withTimeout(ctx, fmt.Sprintf("list dead letters of group %s of %s", group, topic), func(ctx context.Context) error {
		return b.adminDo(ctx, func(a *adminConn) error {
			ds, err := b.takeDead(ctx, a, topic, group, limit)
			if err != nil {
				return err
			}
			out = make([]*driver.Message, 0, len(ds))
			for i := range ds {
				if limit > 0 && len(out) == limit {
					break
				}
				out = append(out, deadLetterOf(&ds[i], b.cfg.QueueType, topic, group))
			}
			return putBack(ds, nil)
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReplayDeadLetters implements driver.DeadLetters: each dead letter whose ID
// is in ids (all when ids is empty) is published, as driver.Revive makes
// it, to the group's queue through the default exchange (mandatory,
// confirmed), so that no other group gets it and its next delivery has
// Attempt 1; then it is removed from the dead letters. The others stay in
// their places. If the admin connection is lost midway, the call starts
// again: a dead letter may then be replayed twice.
func (b *broker) ReplayDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error) {
	set := driver.NewIDSet(ids)
	q := groupQueueName(topic, group)
	var n int
	err := b.withTimeout(ctx, fmt.Sprintf("replay dead letters of group %s of %s", group, topic), func(ctx context.Context) error {
		return b.adminDo(ctx, func(a *adminConn) error {
			n = 0
			ds, err := b.takeDead(ctx, a, topic, group, 0)
			if err != nil {
				return err
			}
			var (
				picked []int
				copies []amqp.Publishing
			)
			for i := range ds {
				m := deadLetterOf(&ds[i], b.cfg.QueueType, topic, group)
				if set.Match(m.ID) {
					picked = append(picked, i)
					copies = append(copies, toPublishing(driver.Revive(m)))
				}
			}
			if len(picked) == 0 {
				return putBack(ds, nil)
			}
			sendErr := b.pub.send(ctx, target{key: q, mandatory: true}, copies)
			failed := map[int]bool{}
			var be *driver.BatchError
			switch {
			case sendErr == nil:
			case errors.As(sendErr, &be):
				for _, k := range be.Failed {
					failed[k] = true
				}
			default:
				_ = putBack(ds, nil)
				return fmt.Errorf("rabbitmq: replay to queue %q: %w", q, sendErr)
			}
			removed := map[int]bool{}
			for k, i := range picked {
				if !failed[k] {
					if err := ds[i].Ack(false); err != nil {
						return err
					}
					removed[i] = true
					n++
				}
			}
			if err := putBack(ds, removed); err != nil {
				return err
			}
			if sendErr != nil {
				return fmt.Errorf("rabbitmq: replay to queue %q: %d of %d not accepted: %w", q, len(failed), len(picked), sendErr)
			}
			return nil
		})
	})
	return n, err
}

// PurgeDeadLetters implements driver.DeadLetters. Without ids it purges the
// dead-letter queue; with ids it removes the dead letters with those IDs
// and leaves the others in their places.
func (b *broker) PurgeDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error) {
	set := driver.NewIDSet(ids)
	var n int
	err := b.withTimeout(ctx, fmt.Sprintf("purge dead letters of group %s of %s", group, topic), func(ctx context.Context) error {
		return b.adminDo(ctx, func(a *adminConn) error {
			n = 0
			if len(ids) == 0 {
				ch, err := a.channel()
				if err != nil {
					return err
				}
				if err := lookUpGroup(ch, topic, group); err != nil {
					return err
				}
				dq := deadQueueName(topic, group)
				purged, err := ch.QueuePurge(dq, false)
				if err != nil {
					return fmt.Errorf("rabbitmq: purge dead-letter queue %q: %w", dq, err)
				}
				n = purged
				return nil
			}
			ds, err := b.takeDead(ctx, a, topic, group, 0)
			if err != nil {
				return err
			}
			removed := map[int]bool{}
			for i := range ds {
				if set.Match(deadLetterOf(&ds[i], b.cfg.QueueType, topic, group).ID) {
					if err := ds[i].Ack(false); err != nil {
						return err
					}
					removed[i] = true
					n++
				}
			}
			return putBack(ds, removed)
		})
	})
	return n, err
}
