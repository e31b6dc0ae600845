package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// adminConn lends channels of the admin connection to one admin operation.
// A channel that the broker closed over a refusal is replaced by asking for
// another; adminDo closes them all when the operation ends.
type adminConn struct {
	conn  *amqp.Connection
	chans []*amqp.Channel
}

// channel opens a new channel for the operation.
func (a *adminConn) channel() (*amqp.Channel, error) {
	ch, err := a.conn.Channel()
	if err != nil {
		return nil, err
	}
	a.chans = append(a.chans, ch)
	return ch, nil
}

func (a *adminConn) close() {
	for _, ch := range a.chans {
		_ = ch.Close()
	}
}

// adminDo runs fn on the admin connection: declarations, deletions, the
// probe before a consume, the dead-letter admin. The admin connection is
// apart from the publishing and consuming ones, so that an operation that
// makes the broker close its connection (RabbitMQ 3.x closes a connection
// with INTERNAL_ERROR when a consumer attaches to a quorum queue that is
// still starting) disturbs neither publishes nor subscriptions. While the
// connection is lost, before or during fn, adminDo waits for the next one
// and runs fn again: fn must be idempotent, or keep track of its progress.
// Refusals of the broker (channel errors) are returned as they are. An
// operation that has not ended after ConfirmTimeout (which bounds every
// admin operation already: an answer takes far less) is taken for a
// connection that stopped answering: the connection is cut (link.abort),
// which fails the operation's calls, and the operation runs again on the
// next connection.
func (b *broker) adminDo(ctx context.Context, fn func(a *adminConn) error) error {
	for {
		conn, err := b.adminLink.get(ctx)
		if err != nil {
			return err
		}
		a := &adminConn{conn: conn}
		watchdog := time.AfterFunc(b.cfg.ConfirmTimeout, func() {
			b.adminLink.abort(conn, fmt.Sprintf("an admin operation had no answer within %v (confirm timeout)", b.cfg.ConfirmTimeout))
		})
		err = fn(a)
		a.close()
		watchdog.Stop()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !connLost(conn, err):
			return err
		}
		// The connection was lost (perhaps closed by the broker over this
		// very operation): the link reconnects with backoff; run fn again
		// on the next connection.
		if err := b.adminLink.waitChange(ctx, conn); err != nil {
			return err
		}
	}
}

// isCode reports whether err is the broker's refusal with AMQP reply code
// code.
func isCode(err error, code int) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == code
}

// declareExchange declares the fanout exchange of topic.
func declareExchange(ch *amqp.Channel, topic string) error {
	if err := ch.ExchangeDeclare(exchangeName(topic), amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declare exchange %q: %w", exchangeName(topic), err)
	}
	return nil
}

// declareGroup declares group of topic: the topic's exchange, the group's
// dead-letter queue, the group's queue and its binding, in this order, so
// that a group queue never exists without its dead-letter queue having been
// made first. With repair false (Subscribe), a group queue that exists
// already is taken as it is, and its dead-letter queue is not made again
// if it was deleted: storing a dead letter then fails (and the message is
// parked) until CreateGroup repairs the group. It is idempotent.
func (b *broker) declareGroup(a *adminConn, topic, group string, repair bool) error {
	q, dq := groupQueueName(topic, group), deadQueueName(topic, group)
	ch, err := a.channel()
	if err != nil {
		return err
	}
	makeDead := repair
	if !repair {
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
			if !isCode(err, amqp.NotFound) {
				return fmt.Errorf("rabbitmq: look up queue %q: %w", q, err)
			}
			makeDead = true // a new group
			if ch, err = a.channel(); err != nil {
				return err
			}
		}
	}
	if err := declareExchange(ch, topic); err != nil {
		return err
	}
	if makeDead {
		if _, err := ch.QueueDeclare(dq, true, false, false, false, deadQueueArgs(b.cfg.DeadLetterLimit)); err != nil {
			if !isCode(err, amqp.PreconditionFailed) {
				return fmt.Errorf("rabbitmq: declare dead-letter queue %q: %w", dq, err)
			}
			// It exists with other arguments (made with another
			// DeadLetterLimit): keep it as it is.
			if ch, err = a.channel(); err != nil {
				return err
			}
			if _, err := ch.QueueDeclarePassive(dq, true, false, false, false, nil); err != nil {
				return fmt.Errorf("rabbitmq: look up dead-letter queue %q: %w", dq, err)
			}
		}
	}
	if _, err := ch.QueueDeclare(q, true, false, false, false, groupQueueArgs(b.cfg.QueueType, dq)); err != nil {
		return fmt.Errorf("rabbitmq: declare queue %q bound to exchange %q: %w", q, exchangeName(topic), err)
	}
	if err := ch.QueueBind(q, "", exchangeName(topic), false, nil); err != nil {
		return fmt.Errorf("rabbitmq: bind queue %q to exchange %q: %w", q, exchangeName(topic), err)
	}
	return nil
}

// probeTag is the consumer tag of probes.
const probeTag = "switchyard-probe"

// probe consumes queue for a moment on the admin connection, so that a
// queue still starting (its Raft member not running yet, on RabbitMQ 3.x)
// fails there, and not on the consuming connection that the group's and
// other groups' consumers share. At most one message is taken (prefetch 1);
// it is handed back untouched.
func (b *broker) probe(ctx context.Context, a *adminConn, queue string) error {
	ch, err := a.channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(1, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(queue, probeTag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("rabbitmq: consume queue %q: %w", queue, err)
	}
	if taken := cancelConsumer(ch, probeTag, deliveries); len(taken) > 0 {
		return b.handBack(ctx, nil, queue, taken, false)
	}
	return nil
}

// retryDeclarations remembers when each shared retry queue was last
// declared by this broker.
type retryDeclarations struct {
	mu sync.Mutex
	at map[time.Duration]time.Time // bucket → declaration
}

// retryTarget returns the retry exchange of bucket, declaring the exchange,
// the queue and its binding unless this broker did so within
// retryRedeclareEvery (or again when force is set); declaring renews the
// queue's x-expires lease, so that it never expires while in use.
func (b *broker) retryTarget(ctx context.Context, bucket time.Duration, force bool) (string, error) {
	name := retryName(b.cfg.QueueType, bucket)
	b.retries.mu.Lock()
	last, ok := b.retries.at[bucket]
	b.retries.mu.Unlock()
	if ok && !force && time.Since(last) < retryRedeclareEvery {
		return name, nil
	}
	start := time.Now()
	err := b.adminDo(ctx, func(a *adminConn) error {
		ch, err := a.channel()
		if err != nil {
			return err
		}
		if err := ch.ExchangeDeclare(name, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(name, true, false, false, false, retryQueueArgs(b.cfg.QueueType, bucket)); err != nil {
			return err
		}
		return ch.QueueBind(name, "", name, false, nil)
	})
	if err != nil {
		return "", fmt.Errorf("rabbitmq: declare retry queue %q: %w", name, err)
	}
	b.retries.mu.Lock()
	b.retries.at[bucket] = start
	b.retries.mu.Unlock()
	return name, nil
}

// forgetRetry makes the next use of bucket declare its retry queue again.
func (b *broker) forgetRetry(bucket time.Duration) {
	b.retries.mu.Lock()
	delete(b.retries.at, bucket)
	b.retries.mu.Unlock()
}

// CreateGroup implements driver.Broker: it declares the topic's exchange,
// the group's dead-letter queue and the group's queue bound to the
// exchange (see the package documentation for names and arguments), and
// re-creates the dead-letter queue if it was deleted. It waits for the
// broker as Publish does.
func (b *broker) CreateGroup(ctx context.Context, topic, group string) error {
	return b.withTimeout(ctx, fmt.Sprintf("create group %s of %s", group, topic), func(ctx context.Context) error {
		return b.adminDo(ctx, func(a *adminConn) error { return b.declareGroup(a, topic, group, true) })
	})
}

// DeleteGroup implements driver.Broker: it deletes the group's queue, then
// its dead-letter queue, with the messages they hold. Retry copies of its
// messages still waiting in the shared retry queues are dropped by the
// broker when their delay ends (unless a group of the same name exists by
// then). A group whose queue does not exist returns an error wrapping
// driver.ErrNotFound.
func (b *broker) DeleteGroup(ctx context.Context, topic, group string) error {
	q, dq := groupQueueName(topic, group), deadQueueName(topic, group)
	deleted := false // the group queue is gone: a retry after a lost connection goes on
	return b.withTimeout(ctx, fmt.Sprintf("delete group %s of %s", group, topic), func(ctx context.Context) error {
		return b.adminDo(ctx, func(a *adminConn) error {
			ch, err := a.channel()
			if err != nil {
				return err
			}
			if !deleted {
				if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
					if isCode(err, amqp.NotFound) {
						return fmt.Errorf("rabbitmq: group %s of topic %s (queue %q): %w", group, topic, q, driver.ErrNotFound)
					}
					return err
				}
				if _, err := ch.QueueDelete(q, false, false, false); err != nil {
					return fmt.Errorf("rabbitmq: delete queue %q: %w", q, err)
				}
				deleted = true
			}
			if _, err := ch.QueueDelete(dq, false, false, false); err != nil {
				return fmt.Errorf("rabbitmq: delete dead-letter queue %q: %w", dq, err)
			}
			return nil
		})
	})
}
