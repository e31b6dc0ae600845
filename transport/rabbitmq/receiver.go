package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub"
)

// receiver is one Subscription's consumer of its group's queue. A goroutine
// (run) keeps a consumer on the current consume connection: after the
// channel or connection is lost, it consumes again on the next one. Receive
// reads the current consumer's deliveries directly and blocks while there is
// none.
type receiver struct {
	b        *Broker
	cfg      pubsub.SubscribeConfig
	queue    string
	prefetch int

	ctx    context.Context // cancelled by Close: ends run
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned

	mu         sync.Mutex
	deliveries <-chan amqp.Delivery // nil while not consuming
	changed    chan struct{}        // closed and replaced when deliveries or closed change
	closed     bool
}

// startReceiver starts consuming the group's queue and returns once the
// consumer is registered with the broker.
func (b *Broker) startReceiver(ctx context.Context, cfg pubsub.SubscribeConfig) (*receiver, error) {
	r := &receiver{
		b:        b,
		cfg:      cfg,
		queue:    groupQueueName(cfg.Topic, cfg.Group),
		prefetch: min(max(b.cfg.Prefetch, cfg.Concurrency), maxPrefetch),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	first := make(chan error, 1)
	err := b.withTimeout(ctx, "subscribe to "+r.queue, func(ctx context.Context) error {
		go r.run(ctx, first)
		select {
		case err := <-first:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// run keeps a consumer running until Close. setupCtx bounds the first
// attempt, whose result goes to first; later attempts retry with backoff.
func (r *receiver) run(setupCtx context.Context, first chan<- error) {
	defer close(r.done)
	pause := reconnectMin
	for {
		ctx := r.ctx
		if first != nil {
			ctx = setupCtx
		}
		ch, deliveries, closes, cancels, conn, err := r.consume(ctx)
		if first != nil {
			first <- err
			first = nil
			if err != nil {
				return
			}
		}
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			if errors.Is(err, pubsub.ErrClosed) {
				// The Broker is closing: Close follows.
				<-r.ctx.Done()
				return
			}
			if conn != nil && connLost(conn, err) {
				// The connection is lost: the link reports that; wait for
				// the next one.
				_ = r.b.subLink.waitChange(r.ctx, conn)
				continue
			}
			r.cfg.Logger.Warn("rabbitmq: cannot consume; retrying", "topic", r.cfg.Topic, "group", r.cfg.Group, "queue", r.queue, "pause", pause, "err", err)
			select {
			case <-time.After(pause/2 + rand.N(pause/2+1)):
				pause = min(2*pause, reconnectMax)
			case <-r.ctx.Done():
				return
			}
			continue
		}
		pause = reconnectMin
		r.install(deliveries)
		select {
		case err := <-closes:
			if err != nil && err.Recover {
				r.cfg.Logger.Warn("rabbitmq: consumer channel closed by the broker; consuming again", "topic", r.cfg.Topic, "group", r.cfg.Group, "queue", r.queue, "err", err)
			}
		case _, ok := <-cancels:
			if ok {
				r.cfg.Logger.Warn("rabbitmq: consumer cancelled by the broker (queue deleted?); consuming again", "topic", r.cfg.Topic, "group", r.cfg.Group, "queue", r.queue)
			}
		case <-r.ctx.Done():
		}
		r.install(nil)
		// Closing the channel hands its unacknowledged messages back to the
		// queue.
		_ = ch.Close()
		if r.ctx.Err() != nil {
			return
		}
	}
}

// consume opens a channel on the current connection, declares the group's
// topology (again, in case it was deleted) and starts consuming.
func (r *receiver) consume(ctx context.Context) (ch *amqp.Channel, deliveries <-chan amqp.Delivery, closes chan *amqp.Error, cancels chan string, conn *amqp.Connection, err error) {
	conn, err = r.b.subLink.get(ctx)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	ch, err = conn.Channel()
	if err != nil {
		return nil, nil, nil, nil, conn, fmt.Errorf("rabbitmq: open consumer channel: %w", err)
	}
	closes = ch.NotifyClose(make(chan *amqp.Error, 1))
	cancels = ch.NotifyCancel(make(chan string, 1))
	fail := func(what string, err error) (*amqp.Channel, <-chan amqp.Delivery, chan *amqp.Error, chan string, *amqp.Connection, error) {
		_ = ch.Close()
		return nil, nil, nil, nil, conn, fmt.Errorf("rabbitmq: %s for queue %q: %w", what, r.queue, err)
	}
	if err := ch.Qos(r.prefetch, 0, false); err != nil {
		return fail("set prefetch", err)
	}
	if err := declareGroup(ch, r.b.cfg.QueueType, r.cfg.Topic, r.cfg.Group); err != nil {
		return fail("declare", err)
	}
	deliveries, err = ch.Consume(r.queue, "", false, false, false, false, nil)
	if err != nil {
		return fail("consume", err)
	}
	return ch, deliveries, closes, cancels, conn, nil
}

// install makes deliveries (nil: none) the source of Receive.
func (r *receiver) install(deliveries <-chan amqp.Delivery) {
	r.mu.Lock()
	r.deliveries = deliveries
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *receiver) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Receive implements pubsub.Receiver. It blocks while the connection is down.
func (r *receiver) Receive(ctx context.Context) (pubsub.Delivery, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, pubsub.ErrClosed
		}
		deliveries, changed := r.deliveries, r.changed
		r.mu.Unlock()
		select {
		case d, ok := <-deliveries: // a nil channel blocks
			if ok {
				return &delivery{r: r, d: d, msg: fromDelivery(&d)}, nil
			}
			// The consumer ended; wait for run to replace it.
			select {
			case <-changed:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close implements pubsub.Receiver: it closes the consumer's channel, so that
// RabbitMQ requeues every delivery not yet acknowledged.
func (r *receiver) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	r.cancel()
	<-r.done
	return nil
}

// delivery is one message delivered to a receiver.
type delivery struct {
	r   *receiver
	d   amqp.Delivery
	msg *pubsub.Message
}

// Message implements pubsub.Delivery. Metadata is never nil, so handlers
// may add to it.
func (d *delivery) Message() *pubsub.Message {
	m := d.msg.Clone()
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	return m
}

func (d *delivery) closedErr(what string) error {
	return fmt.Errorf("rabbitmq: %s message %s of queue %s: subscription closed, the broker redelivers it: %w", what, d.msg.ID, d.r.queue, pubsub.ErrClosed)
}

// Ack implements pubsub.Delivery.
func (d *delivery) Ack(context.Context) error {
	if d.r.isClosed() {
		return d.closedErr("ack")
	}
	if err := d.d.Ack(false); err != nil {
		return fmt.Errorf("rabbitmq: ack message %s of queue %s (the broker redelivers it): %w", d.msg.ID, d.r.queue, err)
	}
	return nil
}

// Retry implements pubsub.Delivery: it publishes a copy with the next attempt
// number to the group's retry queue for delay (rounded up to a bucket, see
// retryBucket), waits for the broker's confirm, and only then acks the
// original. If the copy cannot be published, the original is requeued after
// delay instead (nack), and the error returned.
func (d *delivery) Retry(ctx context.Context, delay time.Duration) error {
	if d.r.isClosed() {
		return d.closedErr("retry")
	}
	if ch, ok := d.d.Acknowledger.(*amqp.Channel); ok && ch.IsClosed() {
		// The broker already requeued the message with the channel; a copy
		// would deliver it twice.
		return fmt.Errorf("rabbitmq: retry message %s of queue %s: consumer channel closed, the broker redelivers it", d.msg.ID, d.r.queue)
	}
	b := d.r.b
	bucket := retryBucket(delay)
	err := b.withTimeout(ctx, "retry message "+d.msg.ID, func(ctx context.Context) error {
		q, err := b.declareRetryQueue(ctx, d.r.queue, bucket)
		if err != nil {
			return err
		}
		return b.pub.send(ctx, target{key: q}, []amqp.Publishing{retryPublishing(&d.d, d.msg.Attempt+1)})
	})
	if err != nil {
		select {
		case <-time.After(delay):
			_ = d.d.Nack(false, true)
		case <-ctx.Done():
		case <-d.r.ctx.Done():
		}
		return fmt.Errorf("rabbitmq: retry message %s of queue %s: %w", d.msg.ID, d.r.queue, err)
	}
	if err := d.d.Ack(false); err != nil {
		return fmt.Errorf("rabbitmq: ack message %s of queue %s after its retry copy was accepted (it will be delivered twice): %w", d.msg.ID, d.r.queue, err)
	}
	return nil
}

// retryDecl records when a retry queue was last declared.
type retryDecl struct{ at time.Time }

// declareRetryQueue declares the retry queue of groupQueue for bucket, unless
// this Broker did so within retryRedeclareEvery; redeclaring renews the
// queue's x-expires lease, so that it never expires while in use.
func (b *Broker) declareRetryQueue(ctx context.Context, groupQueue string, bucket time.Duration) (string, error) {
	name := retryQueueName(groupQueue, bucket)
	b.retryMu.Lock()
	last, ok := b.retryDeclared[name]
	b.retryMu.Unlock()
	if ok && time.Since(last.at) < retryRedeclareEvery {
		return name, nil
	}
	start := time.Now()
	err := b.pub.admin.do(ctx, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(name, true, false, false, false, retryQueueArgs(b.cfg.QueueType, groupQueue, bucket))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("rabbitmq: declare retry queue %q: %w", name, err)
	}
	b.retryMu.Lock()
	b.retryDeclared[name] = retryDecl{at: start}
	b.retryMu.Unlock()
	return name, nil
}
