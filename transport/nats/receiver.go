package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Subscribe implements driver.Broker: it creates the group if it does not
// exist (retrying transient errors within ctx and RequestTimeout) and pulls
// from its two consumers. Each member fetches ahead up to twice its
// concurrency from the topic and up to its concurrency from the group's own
// subject.
func (b *broker) Subscribe(ctx context.Context, topic, group string, cfg driver.SubscribeConfig) (driver.Subscription, error) {
	g, err := b.ensureGroup(ctx, topic, group)
	if err != nil {
		return nil, err
	}
	r := &receiver{
		b: b, topic: topic, group: group, stream: g.stream, log: cfg.Logger,
		out:    make(chan *delivery),
		closed: make(chan struct{}),
		held:   map[*delivery]struct{}{},
		feeds: []*feed{
			{consumer: g.main, name: consumerName(group), batch: 2 * cfg.Concurrency},
			{consumer: g.own, name: ownConsumerName(group), own: true, batch: cfg.Concurrency},
		},
	}
	for _, f := range r.feeds {
		if f.iter, err = f.consumer.Messages(jetstream.PullMaxMessages(f.batch)); err != nil {
			for _, f := range r.feeds {
				if f.iter != nil {
					f.iter.Stop()
				}
			}
			return nil, fmt.Errorf("nats: consume %s of stream %s: %w", f.name, g.stream, err)
		}
	}
	for _, f := range r.feeds {
		r.pumps.Go(func() { r.pump(f) })
	}
	r.keepAlive.Go(r.keepAliveLoop)
	return r, nil
}

// feed is one consumer a receiver pulls from.
type feed struct {
	consumer jetstream.Consumer
	name     string
	own      bool
	batch    int
	iter     jetstream.MessagesContext // guarded by receiver.mu after start
}

// receiver is one member of a group: pumps move messages from the
// consumers' iterators to Receive, and the keep-alive loop reports progress
// on every message the member holds.
type receiver struct {
	b                *broker
	topic, group     string
	stream           string
	log              *slog.Logger
	feeds            []*feed
	out              chan *delivery
	closed           chan struct{}
	pumps, keepAlive sync.WaitGroup
	mu               sync.Mutex
	done             bool
	held             map[*delivery]struct{} // taken from the server, not settled
}

// Receive implements driver.Subscription.
func (r *receiver) Receive(ctx context.Context) (driver.Delivery, error) {
	select {
	case d := <-r.out:
		return d, nil
	case <-r.closed:
		return nil, driver.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pump hands f's messages to Receive until the receiver closes, then takes
// what f's iterator still buffers so that Close can release it. If the
// iterator stops by itself (its consumer was deleted), it waits and opens
// it again.
func (r *receiver) pump(f *feed) {
	pause := 100 * time.Millisecond
	for {
		r.mu.Lock()
		it := f.iter
		r.mu.Unlock()
		m, err := it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				r.log.Debug("nats: pull from consumer", "stream", r.stream, "consumer", f.name, "err", err)
				select {
				case <-time.After(10 * time.Millisecond): // not a hot loop
				case <-r.closed:
				}
				continue
			}
			if r.isDone() || errors.Is(err, jetstream.ErrConnectionClosed) {
				return
			}
			r.log.Warn("nats: consumer stopped delivering; opening it again", "stream", r.stream, "consumer", f.name, "pause", pause)
			if !r.reopen(f, pause) {
				return
			}
			pause = min(2*pause, 5*time.Second)
			continue
		}
		pause = 100 * time.Millisecond
		d := r.track(m, f.own)
		if d == nil {
			continue // unreadable metadata: not a JetStream message
		}
		select {
		case r.out <- d:
		case <-r.closed:
			// Close releases it with the rest.
		}
	}
}

// reopen waits pause, then looks f's consumer up and opens a new
// iterator on it, until that works or the receiver closes (false).
func (r *receiver) reopen(f *feed, pause time.Duration) bool {
	for {
		select {
		case <-time.After(pause):
		case <-r.closed:
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		c, err := r.b.js.Consumer(ctx, r.stream, f.name)
		cancel()
		var it jetstream.MessagesContext
		if err == nil {
			it, err = c.Messages(jetstream.PullMaxMessages(f.batch))
		}
		if err != nil {
			r.log.Debug("nats: open consumer", "stream", r.stream, "consumer", f.name, "err", err)
			pause = min(2*pause, 5*time.Second)
			continue
		}
		r.mu.Lock()
		if r.done {
			r.mu.Unlock()
			it.Stop()
			return false
		}
		f.iter = it
		r.mu.Unlock()
		return true
	}
}

func (r *receiver) isDone() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// track records m as held by this member and returns its delivery.
func (r *receiver) track(m jetstream.Msg, own bool) *delivery {
	meta, err := m.Metadata()
	if err != nil {
		r.log.Error("nats: message without JetStream metadata; left to redeliver", "stream", r.stream, "subject", m.Subject(), "err", err)
		return nil
	}
	d := &delivery{r: r, msg: m, meta: meta, own: own}
	d.attempt = baseAttempt(m.Headers()) + int(meta.NumDelivered) - 1
	r.mu.Lock()
	r.held[d] = struct{}{}
	r.mu.Unlock()
	return d
}

// keepAliveLoop tells the server every AckWait/3 that the messages this
// member holds are in progress, so that none is delivered again while a
// handler runs, waits in line, or waits for its dead letter to be stored.
func (r *receiver) keepAliveLoop() {
	t := time.NewTicker(r.b.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.closed:
			return
		}
		r.mu.Lock()
		held := make([]*delivery, 0, len(r.held))
		for d := range r.held {
			held = append(held, d)
		}
		r.mu.Unlock()
		for _, d := range held {
			_ = d.msg.InProgress() // fails once settled; a lost one is sent again next time
		}
	}
}

// Close implements driver.Subscription: it stops the pulls, takes what the
// iterators still buffer (or what the server had sent already), and releases
// every message not settled, as Release does.
func (r *receiver) Close() error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	r.done = true
	close(r.closed)
	for _, f := range r.feeds {
		f.iter.Drain()
	}
	r.mu.Unlock()
	r.pumps.Wait()
	r.keepAlive.Wait()

	r.mu.Lock()
	left := make([]*delivery, 0, len(r.held))
	for d := range r.held {
		left = append(left, d)
	}
	r.mu.Unlock()
	if len(left) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.b.cfg.RequestTimeout)
	defer cancel()
	attempts := make([]int, len(left))
	for i, d := range left {
		attempts[i] = d.attempt
	}
	if err := r.b.redeliver(ctx, left, attempts, true); err != nil {
		return fmt.Errorf("nats: release %d messages of group %s of topic %s at close: %w", len(left), r.group, r.topic, err)
	}
	return nil
}
