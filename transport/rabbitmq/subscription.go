package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// subscription is one member's consumer of its group's queue. A goroutine
// (run) keeps a consumer on the current consume connection: after the
// channel or connection is lost, it declares the group again, probes the
// queue on the admin connection and consumes again on the next one.
// Receive reads the current consumer's deliveries directly and blocks while
// there is none.
type subscription struct {
	b            *broker
	topic, group string
	queue        string // the group's queue
	deadQueue    string
	prefetch     int
	log          *slog.Logger

	ctx    context.Context // cancelled by Close: ends run
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned

	mu        sync.Mutex
	cur       *consumer     // nil while not consuming
	changed   chan struct{} // closed and replaced when cur or closed change
	closed    bool
	receiving sync.WaitGroup         // Receive calls in progress; Add under mu while !closed
	unsettled map[*delivery]struct{} // delivered by Receive, not settled yet
	// twins holds back the redelivery of a message whose earlier delivery,
	// on a channel the broker closed (consumer_timeout), is still being
	// handled here: old delivery -> its redelivery. See holdTwin.
	twins map[*delivery]*delivery
	ready []*delivery // redeliveries released by their twin, for Receive
	// handled holds the IDs of messages whose handler succeeded but whose
	// ack was lost with a channel the broker had closed, with when: their
	// redelivery is acked without running the handler (see skipHandled).
	handled map[string]time.Time
}

// handledTTL bounds how long a subscription remembers a handled message
// whose ack was lost, waiting for its redelivery.
const handledTTL = 10 * time.Minute

// consumer is one basic.consume on a channel of the consume connection.
type consumer struct {
	ch         *amqp.Channel
	tag        string
	deliveries <-chan amqp.Delivery
}

// consumerTag names a subscription's consumers, for management tools.
const consumerTag = "switchyard"

// prefetchFor is the prefetch of a subscription with concurrency n:
// Config.Prefetch, or twice n when it is 0; never below n nor above what
// AMQP carries.
func (b *broker) prefetchFor(n int) int {
	p := b.cfg.Prefetch
	if p == 0 {
		p = 2 * n
	}
	return min(max(p, n), maxPrefetch)
}

// Subscribe implements driver.Broker. The subscription consumes the group's
// queue on a channel of its own, with the prefetch of prefetchFor; after a
// lost connection it consumes again on the next one. Setting up (declaring
// the group, probing its queue, consuming) is retried while it fails for a
// reason that passes (a lost connection, a queue still starting or just
// deleted), within ctx and ConfirmTimeout; the broker's refusals (a group
// queue of another type: PRECONDITION_FAILED) are returned.
func (b *broker) Subscribe(ctx context.Context, topic, group string, cfg driver.SubscribeConfig) (driver.Subscription, error) {
	s := &subscription{
		b:         b,
		topic:     topic,
		group:     group,
		queue:     groupQueueName(topic, group),
		deadQueue: deadQueueName(topic, group),
		prefetch:  b.prefetchFor(cfg.Concurrency),
		log:       cfg.Logger,
		done:      make(chan struct{}),
		changed:   make(chan struct{}),
		unsettled: map[*delivery]struct{}{},
		twins:     map[*delivery]*delivery{},
		handled:   map[string]time.Time{},
	}
	if s.log == nil {
		s.log = b.log
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	first := make(chan error, 1)
	err := b.withTimeout(ctx, "subscribe to "+s.queue, func(ctx context.Context) error {
		go s.run(ctx, first)
		select {
		case err := <-first:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// run keeps a consumer running until Close. setupCtx bounds the first
// consume, whose result goes to first; later ones retry with backoff until
// Close. When Close cancels s.ctx, run returns and leaves the current
// consumer to Close, which hands its deliveries back.
func (s *subscription) run(setupCtx context.Context, first chan<- error) {
	defer close(s.done)
	pause := reconnectMin
	for {
		ctx := s.ctx
		if first != nil {
			ctx = setupCtx
		}
		c, closes, cancels, conn, err := s.consume(ctx)
		if err != nil {
			switch {
			case s.ctx.Err() != nil:
				if first != nil {
					first <- driver.ErrClosed
				}
				return
			case first != nil && (ctx.Err() != nil || !transient(conn, err)):
				first <- err
				return
			case errors.Is(err, driver.ErrClosed):
				// The broker is closing: Close follows.
				if first != nil {
					first <- err
					return
				}
				<-s.ctx.Done()
				return
			case conn != nil && connLost(conn, err):
				// The consume connection is lost: its link reports that
				// and reconnects; wait for the next one.
				_ = s.b.subLink.waitChange(ctx, conn)
				continue
			}
			if first == nil {
				s.log.Warn("rabbitmq: cannot consume; retrying", "topic", s.topic, "group", s.group, "queue", s.queue, "pause", pause, "err", err)
			}
			select {
			case <-time.After(pause/2 + rand.N(pause/2+1)):
				pause = min(2*pause, reconnectMax)
			case <-ctx.Done():
			case <-s.ctx.Done():
			}
			continue
		}
		pause = reconnectMin
		s.install(c)
		if first != nil {
			first <- nil
			first = nil
		}
		select {
		case err := <-closes:
			if err != nil && err.Recover {
				s.log.Warn("rabbitmq: consumer channel closed by the broker; consuming again", "topic", s.topic, "group", s.group, "queue", s.queue, "err", err)
			}
		case _, ok := <-cancels:
			if ok {
				s.log.Warn("rabbitmq: consumer cancelled by the broker (queue deleted?); consuming again", "topic", s.topic, "group", s.group, "queue", s.queue)
			}
		case <-s.ctx.Done():
			return // Close takes over c
		}
		s.install(nil)
		// Closing the channel hands its unacknowledged messages back to the
		// queue (the connection is lost, or the consumer was cancelled).
		_ = c.ch.Close()
	}
}

// transient reports whether err, from setting up a consumer on conn, may
// pass if tried again: a lost connection, a queue deleted or still starting
// (NOT_FOUND, or the broker's INTERNAL_ERROR), a channel limit reached.
func transient(conn *amqp.Connection, err error) bool {
	if connLost(conn, err) {
		return true
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case amqp.NotFound, amqp.InternalError, amqp.ResourceError, amqp.ChannelError:
		return true
	}
	return false
}

// consume declares the group's topology (again, in case it was deleted) and
// probes its queue on the admin connection, then opens a channel on the
// current consume connection and starts consuming. conn is the consume
// connection it tried, if any.
func (s *subscription) consume(ctx context.Context) (c *consumer, closes chan *amqp.Error, cancels chan string, conn *amqp.Connection, err error) {
	err = s.b.adminDo(ctx, func(a *adminConn) error {
		if err := s.b.declareGroup(a, s.topic, s.group, false); err != nil {
			return err
		}
		return s.b.probe(ctx, a, s.queue)
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	conn, err = s.b.subLink.get(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, nil, conn, fmt.Errorf("rabbitmq: open consumer channel: %w", err)
	}
	closes = ch.NotifyClose(make(chan *amqp.Error, 1))
	cancels = ch.NotifyCancel(make(chan string, 1))
	fail := func(what string, err error) (*consumer, chan *amqp.Error, chan string, *amqp.Connection, error) {
		_ = ch.Close()
		return nil, nil, nil, conn, fmt.Errorf("rabbitmq: %s for queue %q: %w", what, s.queue, err)
	}
	if err := ch.Qos(s.prefetch, 0, false); err != nil {
		return fail("set prefetch", err)
	}
	deliveries, err := ch.Consume(s.queue, consumerTag, false, false, false, false, nil)
	if err != nil {
		return fail("consume", err)
	}
	if ctx.Err() != nil {
		return fail("consume", ctx.Err())
	}
	return &consumer{ch: ch, tag: consumerTag, deliveries: deliveries}, closes, cancels, conn, nil
}

// install makes c (nil: none) the source of Receive.
func (s *subscription) install(c *consumer) {
	s.mu.Lock()
	s.cur = c
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Receive implements driver.Subscription. It blocks while the connection is
// down.
func (s *subscription) Receive(ctx context.Context) (driver.Delivery, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, driver.ErrClosed
	}
	s.receiving.Add(1)
	s.mu.Unlock()
	defer s.receiving.Done()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, driver.ErrClosed
		}
		c, changed := s.cur, s.changed
		if len(s.ready) > 0 {
			dl := s.ready[0]
			s.ready = s.ready[1:]
			s.mu.Unlock()
			return dl, nil
		}
		s.mu.Unlock()
		var deliveries <-chan amqp.Delivery // nil blocks
		if c != nil {
			deliveries = c.deliveries
		}
		select {
		case d, ok := <-deliveries:
			if ok {
				dl := s.track(c, d)
				if s.holdTwin(dl) || s.skipHandled(dl) {
					continue
				}
				return dl, nil
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

// track records d, delivered by c, as unsettled.
func (s *subscription) track(c *consumer, d amqp.Delivery) *delivery {
	dl := &delivery{s: s, c: c, d: d}
	m := fromDelivery(&d, s.b.cfg.QueueType)
	dl.id, dl.attempt = m.ID, m.Attempt
	s.mu.Lock()
	s.unsettled[dl] = struct{}{}
	s.mu.Unlock()
	return dl
}

// holdTwin holds dl back, and reports true, when it is a redelivery of a
// message whose earlier delivery to this subscription is still unsettled on
// a channel the broker closed: the broker reclaimed it (its
// consumer_timeout passed while the handler ran) and delivered it again.
// Instead of a second run alongside the first, dl waits for the first run's
// outcome: if its handler succeeds, dl is acked in its place (see Ack); if
// not, dl is released to Receive (see finish) and handled as a redelivery.
func (s *subscription) holdTwin(dl *delivery) bool {
	if !isRedelivery(dl) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for old := range s.unsettled {
		if old != dl && old.id == dl.id && old.c != dl.c && !old.done && old.fallback == nil && s.twins[old] == nil && old.c.ch.IsClosed() {
			s.twins[old] = dl
			s.log.Warn("rabbitmq: message delivered again while its handler still runs (the broker's consumer_timeout passed); holding the redelivery until the handler returns",
				"topic", s.topic, "group", s.group, "queue", s.queue, "message_id", dl.id)
			return true
		}
	}
	return false
}

// isRedelivery reports whether dl was delivered before: flagged by the
// broker, or counted in its Attempt (the copy that a probe or a hand-back
// made of a returned message carries the count, not the flag).
func isRedelivery(dl *delivery) bool {
	return dl.d.Redelivered || dl.attempt > 1
}

// rememberHandled records that the handler of message id succeeded but its
// ack was lost with a channel the broker closed.
func (s *subscription) rememberHandled(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, at := range s.handled {
		if now.Sub(at) > handledTTL {
			delete(s.handled, k)
		}
	}
	s.handled[id] = now
}

// skipHandled acks dl, and reports true, when it is the redelivery of a
// message whose handler already succeeded in this subscription but whose
// ack was lost with a channel the broker closed (consumer_timeout).
func (s *subscription) skipHandled(dl *delivery) bool {
	if !isRedelivery(dl) {
		return false
	}
	s.mu.Lock()
	_, ok := s.handled[dl.id]
	delete(s.handled, dl.id)
	s.mu.Unlock()
	if !ok {
		return false
	}
	if err := dl.Ack(context.Background()); err != nil {
		s.log.Warn("rabbitmq: cannot ack the redelivery of a message already handled", "topic", s.topic, "group", s.group, "queue", s.queue, "message_id", dl.id, "err", err)
	} else {
		s.log.Warn("rabbitmq: acked the redelivery of a message already handled (its ack was lost when the broker's consumer_timeout passed)", "topic", s.topic, "group", s.group, "queue", s.queue, "message_id", dl.id)
	}
	return true
}

// Close implements driver.Subscription. It cancels the consumer first, so
// that the broker sends nothing more; then it hands back, untouched, the
// messages delivered but not settled: those fetched ahead and never
// received, and those received and not settled. Handing back publishes a
// copy of each to the group's queue with its Attempt (mandatory, confirmed)
// and acks the original, because returning a message to a quorum queue
// counts as a failed delivery on RabbitMQ 3.x and 4.0 to 4.2; messages
// whose copy is not accepted are returned (basic.nack with requeue).
// Retries waiting to fall back (see Retry) are returned at once. Finally it
// closes the channel. Settling a delivery afterwards returns an error
// wrapping driver.ErrClosed.
func (s *subscription) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.cancel()
	<-s.done
	s.receiving.Wait()

	s.mu.Lock()
	c := s.cur
	s.cur = nil
	s.mu.Unlock()
	var fetched []amqp.Delivery
	if c != nil {
		// A basic.get on the consumer's channel first: the broker answers
		// it only after it applied the acks sent before (on quorum
		// queues: through the Raft log) and sent the deliveries they made
		// room for, which the consumer then receives as usual. A delivery
		// racing the cancel instead is dropped by RabbitMQ 3.x for quorum
		// queues and stays checked out until the channel closes, which
		// counts it. The message the get takes, if any, is handed back
		// with the others.
		if d, ok, err := c.ch.Get(s.queue, false); err == nil && ok {
			fetched = append(fetched, d)
		}
		fetched = append(fetched, cancelConsumer(c.ch, c.tag, c.deliveries)...)
	}
	var (
		held  []amqp.Delivery
		later []*delivery // retries waiting to fall back
		exact = true      // held and fetched are all c's unsettled deliveries
	)
	s.mu.Lock()
	clear(s.twins)
	s.ready = nil
	for dl := range s.unsettled {
		delete(s.unsettled, dl)
		switch {
		case dl.fallback != nil:
			later = append(later, dl)
		case dl.busy:
			// Being settled right now (the portable layer does not do
			// this): that settlement decides.
			exact = exact && dl.c != c
		case dl.c == c && c != nil:
			dl.done = true
			held = append(held, dl.d)
		default:
			// Its channel was closed: the broker took it back.
			dl.done = true
		}
	}
	s.mu.Unlock()
	for _, dl := range later {
		dl.fallNow()
	}
	if back := append(held, fetched...); len(back) > 0 && !c.ch.IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.ConfirmTimeout)
		// The copies go out on the consumer's own channel: on a quorum
		// queue, their confirmations then come after the broker applied
		// every acknowledgement sent before on the channel. RabbitMQ 3.x
		// holds back acknowledgements beyond 32 unapplied commands on a
		// channel, and drops them if the channel closes first (the
		// messages would come back as duplicates).
		// During a resource alarm (the broker blocks the publishing
		// connection), publishing on the consume connection would get it
		// blocked too, stalling every subscription's acknowledgements: the
		// copies then go out on the publishing connection.
		var on *confirmChannel
		if !s.b.pubLink.isBlocked() {
			if cc, err := newConfirmChannel(c.ch); err == nil {
				on = cc
			}
		}
		err := s.b.handBack(ctx, on, s.queue, back, exact)
		cancel()
		if err != nil {
			s.log.Warn("rabbitmq: messages handed back by returning them to the queue", "topic", s.topic, "group", s.group, "queue", s.queue, "err", err)
		}
	}
	if c != nil {
		_ = c.ch.Close()
	}
	return nil
}
