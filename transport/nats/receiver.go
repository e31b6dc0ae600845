package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// How a member pulls: one fetch request at a time per consumer, for
// what the member has room for, waiting at most pullWait for messages. A
// request that the server lost is noticed after pullWait and a second more.
// (The jetstream package's Messages iterator, which keeps requests
// outstanding on one inbox, stalls for its heartbeat interval now and then
// on NATS Server 2.9.)
const pullWait = 500 * time.Millisecond

// Subscribe implements driver.Broker: it creates the group if it does not
// exist (retrying transient errors within ctx and RequestTimeout) and pulls
// from its two consumers. Each member holds (fetched and not settled) at
// most Config.Prefetch, or twice its concurrency if that is more, of the
// topic's messages, and its concurrency of the group's own.
func (b *broker) Subscribe(ctx context.Context, topic, group string, cfg driver.SubscribeConfig) (driver.Subscription, error) {
	g, err := b.ensureGroup(ctx, topic, group)
	if err != nil {
		return nil, err
	}
	r := &receiver{
		b: b, topic: topic, group: group, stream: g.stream, log: cfg.Logger,
		out:    make(chan *delivery, max(2*cfg.Concurrency, b.cfg.Prefetch)+cfg.Concurrency),
		closed: make(chan struct{}),
		held:   map[*delivery]struct{}{},
		feeds: []*feed{
			{consumer: g.main, name: consumerName(group), limit: max(2*cfg.Concurrency, b.cfg.Prefetch), room: make(chan struct{}, 1)},
			{consumer: g.own, name: ownConsumerName(group), limit: cfg.Concurrency, room: make(chan struct{}, 1)},
		},
	}
	for _, f := range r.feeds {
		r.pulls.Go(func() { r.pull(f) })
	}
	r.keepAlive.Go(r.keepAliveLoop)
	return r, nil
}

// feed is one consumer a receiver pulls from.
type feed struct {
	consumer jetstream.Consumer
	name     string
	limit    int           // most messages held and asked for at once
	held     int           // fetched, not settled; guarded by receiver.mu
	asked    int           // asked for by requests out, not arrived; guarded by receiver.mu
	fetching int           // fetch requests out; guarded by receiver.mu
	room     chan struct{} // signalled when a held message is settled
}

// receiver is one member of a group: a pull loop per consumer hands
// messages to Receive, and the keep-alive loop reports progress on every
// message the member holds.
type receiver struct {
	b                *broker
	topic, group     string
	stream           string
	log              *slog.Logger
	feeds            []*feed
	out              chan *delivery
	closed           chan struct{}
	pulls, keepAlive sync.WaitGroup
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

// pull fetches f's messages for as long as the receiver is open, one fetch
// request at a time, each asking for the room free when at least half of
// f's limit is (so that requests carry batches). (Two requests out at once
// measured no faster: each carries a smaller batch.) Close waits for the
// request in progress to end rather than abandon it, since the server may
// have sent messages to it already.
func (r *receiver) pull(f *feed) {
	var fetches sync.WaitGroup
	defer fetches.Wait()
	for {
		n, ok := r.reserve(f)
		if !ok {
			return
		}
		fetches.Go(func() { r.fetch(f, n) })
	}
}

// reserve waits until f may send a fetch request: the receiver is open,
// no request is out, and the room not yet asked for is at least half of
// f's limit (or all of it). It reserves that room and
// returns its size, or false once the receiver is closed.
func (r *receiver) reserve(f *feed) (int, bool) {
	for {
		r.mu.Lock()
		if r.done {
			r.mu.Unlock()
			return 0, false
		}
		free := f.limit - f.held - f.asked
		if f.fetching < 1 && free > 0 && (2*free >= f.limit || free == f.limit) {
			f.asked += free
			f.fetching++
			r.mu.Unlock()
			return free, true
		}
		r.mu.Unlock()
		select {
		case <-f.room:
		case <-r.closed:
			return 0, false
		}
	}
}

// fetch sends one fetch request for n of f's messages and hands what
// comes to Receive. Messages that arrive once the receiver closed stay
// held, for Close to release. After an error (the connection is down, the
// consumer is gone: deleted, or not back yet after a server restart) it
// pauses before giving its turn back, so that failing requests do not
// loop hot.
func (r *receiver) fetch(f *feed, n int) {
	got := 0
	batch, err := f.consumer.Fetch(n, jetstream.FetchMaxWait(pullWait))
	if err == nil {
		for m := range batch.Messages() {
			got++
			d := r.track(m, f)
			if d == nil {
				continue
			}
			select {
			case r.out <- d:
			case <-r.closed: // held: Close releases it
			}
		}
		err = batch.Error()
	}
	if err != nil && !errors.Is(err, natsgo.ErrTimeout) && !errors.Is(err, natsgo.ErrConnectionClosed) {
		r.log.Debug("nats: fetch", "stream", r.stream, "consumer", f.name, "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), r.b.cfg.RequestTimeout)
		go func() {
			select {
			case <-r.closed:
				cancel()
			case <-ctx.Done():
			}
		}()
		_ = r.b.link.wait(ctx) // the connection first
		select {
		case <-time.After(time.Duration(100+rand.IntN(400)) * time.Millisecond):
		case <-ctx.Done():
		}
		cancel()
	}
	r.mu.Lock()
	f.asked -= n - got
	f.fetching--
	r.mu.Unlock()
	select {
	case f.room <- struct{}{}:
	default:
	}
}

// track records m as held by this member and returns its delivery.
func (r *receiver) track(m jetstream.Msg, f *feed) *delivery {
	meta, err := m.Metadata()
	if err != nil {
		r.log.Error("nats: message without JetStream metadata; left to redeliver", "stream", r.stream, "subject", m.Subject(), "err", err)
		return nil
	}
	d := &delivery{r: r, f: f, msg: m, meta: meta}
	// It was asked for: now it is held.
	d.attempt = baseAttempt(m.Headers()) + int(meta.NumDelivered) - 1
	r.mu.Lock()
	r.held[d] = struct{}{}
	f.held++
	f.asked--
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
		// Under r.mu, so that no settlement comes between the check that
		// d is held and its progress report: a report that reached the
		// server after a negative acknowledgement with delay would
		// replace the delay by AckWait. (jetstream.Msg's own check, that
		// the message was not acknowledged yet, leaves that gap.) A lost
		// report is sent again next time.
		r.mu.Lock()
		for d := range r.held {
			_ = d.msg.InProgress()
		}
		r.mu.Unlock()
	}
}

// Close implements driver.Subscription: it stops the pulls, waits for the
// fetch requests in progress to end (at most pullWait), and releases every
// message not settled, as Release does.
func (r *receiver) Close() error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	r.done = true
	close(r.closed)
	r.mu.Unlock()
	r.pulls.Wait()
	r.keepAlive.Wait()

	r.mu.Lock()
	left := make([]*delivery, 0, len(r.held))
	attempts := make([]int, 0, len(r.held))
	for d := range r.held {
		left = append(left, d)
		if d.retryAs > 0 {
			attempts = append(attempts, d.retryAs) // waiting for its retry
		} else {
			attempts = append(attempts, d.attempt)
		}
	}
	r.mu.Unlock()
	if len(left) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.b.cfg.RequestTimeout)
	defer cancel()
	if err := r.b.redeliver(ctx, left, attempts, true); err != nil {
		return fmt.Errorf("nats: release %d messages of group %s of topic %s at close: %w", len(left), r.group, r.topic, err)
	}
	return nil
}
