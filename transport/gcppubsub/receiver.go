package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub"
)

const (
	// receiverCloseTimeout bounds how long Close waits for the client's
	// Receive to return.
	receiverCloseTimeout = 10 * time.Second
	// settleFlush is how long after an ack or nack the client has surely
	// sent it: it sends them every 100ms.
	settleFlush = 150 * time.Millisecond
	// maxLocalAttempts bounds the fallback attempt counter (see attempt).
	maxLocalAttempts = 100_000
)

// receiver bridges the client's callback-based Subscriber.Receive to the
// portable loop's Receive calls. Each callback hands its message to a worker
// through ch and then waits until the message is settled, so the client's
// flow control counts the messages being handled and its ordering scheduler
// does not start a key's next message early.
type receiver struct {
	sub     *gpubsub.Subscriber
	path    string // subscription path, for errors
	ordered bool   // the subscription delivers keys in order
	// recreate, if not nil, sets the subscription up again when Pub/Sub
	// reports it missing (deleted, or an emulator restarted empty).
	recreate func(context.Context) error

	ch      chan *delivery
	errc    chan error    // the latest Receive failure, for the portable loop to log
	closing chan struct{} // closed by Close
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the client's Receive has returned for good

	mu         sync.Mutex
	closed     bool
	pending    map[*delivery]struct{} // unsettled, or waiting out a Retry delay
	local      map[string]int         // fallback attempt counts by Pub/Sub message ID
	lastSettle time.Time              // of the latest ack or nack
}

// newReceiver starts receiving from sub, whose ReceiveSettings it completes
// with its shutdown behaviour (see Close).
func newReceiver(sub *gpubsub.Subscriber, path string, ordered bool, recreate func(context.Context) error) *receiver {
	sub.ReceiveSettings.ShutdownOptions = &gpubsub.ShutdownOptions{
		Timeout:  receiverCloseTimeout,
		Behavior: gpubsub.ShutdownBehaviorNackImmediately,
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &receiver{
		sub: sub, path: path, ordered: ordered, recreate: recreate,
		ch: make(chan *delivery), errc: make(chan error, 1), closing: make(chan struct{}),
		cancel: cancel, stopped: make(chan struct{}),
		pending: map[*delivery]struct{}{}, local: map[string]int{},
	}
	go r.run(ctx)
	return r
}

// run keeps the client's Receive going until Close, restarting it after a
// pause when it fails (a deleted subscription, lost permissions; transient
// errors the client retries itself).
func (r *receiver) run(ctx context.Context) {
	defer close(r.stopped)
	pause := 100 * time.Millisecond
	for {
		started := time.Now()
		err := r.sub.Receive(ctx, r.callback)
		// The client has closed its streams and nacked every message it
		// held; what is still pending here only needs its bookkeeping.
		r.handBackAll()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = fmt.Errorf("gcppubsub: receive from subscription %s: %w", r.path, err)
			if status.Code(err) == codes.NotFound && r.recreate != nil {
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				if rerr := r.recreate(rctx); rerr != nil {
					err = errors.Join(err, rerr)
				} else {
					err = fmt.Errorf("%w (it was missing and has been set up again)", err)
				}
				cancel()
			}
			select {
			case <-r.errc: // replace an unread older failure
			default:
			}
			r.errc <- err
		}
		if time.Since(started) > time.Minute {
			pause = 100 * time.Millisecond
		}
		select {
		case <-time.After(pause):
			pause = min(2*pause, 10*time.Second)
		case <-ctx.Done():
			return
		}
	}
}

// callback is the client's message handler. It returns once the message is
// settled, or when the client's Receive stops; it never nacks a message
// itself then, because the client, stopping, first closes its streams and
// then nacks every message it holds (ShutdownBehaviorNackImmediately): a
// nack sent while the streams are open could have Pub/Sub deliver the
// message straight back to this closing client, and one left to the
// client's background sender after the streams closed is dropped.
func (r *receiver) callback(ctx context.Context, m *gpubsub.Message) {
	d := &delivery{r: r, m: m, msg: decode(m), released: make(chan struct{})}
	d.release = sync.OnceFunc(func() { close(d.released) })
	r.mu.Lock()
	d.msg.Attempt = r.attemptLocked(m)
	r.pending[d] = struct{}{}
	closed := r.closed
	r.mu.Unlock()
	if closed {
		<-ctx.Done() // closing: hold it for the client's shutdown nack
		return
	}
	select {
	case r.ch <- d:
	case <-ctx.Done():
		return
	case <-r.closing:
		<-ctx.Done()
		return
	}
	select {
	case <-d.released:
	case <-ctx.Done():
	}
}

// attemptLocked returns the delivery attempt of m: Pub/Sub's count, which
// it keeps for subscriptions with a dead-letter policy (every subscription
// the broker sets up). Without one (auto-creation disabled and no policy)
// it falls back to counting this receiver's own deliveries of the message.
func (r *receiver) attemptLocked(m *gpubsub.Message) int {
	if m.DeliveryAttempt != nil && *m.DeliveryAttempt > 0 {
		return *m.DeliveryAttempt
	}
	if len(r.local) >= maxLocalAttempts {
		clear(r.local)
	}
	r.local[m.ID]++
	return r.local[m.ID]
}

// Receive implements pubsub.Receiver.
func (r *receiver) Receive(ctx context.Context) (pubsub.Delivery, error) {
	select {
	case d := <-r.ch:
		return d, nil
	case err := <-r.errc:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.closing:
		return nil, pubsub.ErrClosed
	}
}

// Close implements pubsub.Receiver. Workers' Receive calls return ErrClosed
// at once. Close then waits until the client has sent the latest acks and
// nacks (it sends them every 100ms, and drops unsent ones when its streams
// close) and stops the client's Receive, which closes its streams, so that
// Pub/Sub delivers nothing more to them, and nacks every message it holds:
// unsettled ones, those waiting out a Retry delay, and those not yet handed
// to a worker. Pub/Sub redelivers them at once to the group's other members.
func (r *receiver) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.closing)
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		r.mu.Lock()
		wait := settleFlush - time.Since(r.lastSettle)
		r.mu.Unlock()
		if wait <= 0 {
			break
		}
		time.Sleep(wait)
	}
	r.cancel()
	select {
	case <-r.stopped:
		return nil
	case <-time.After(receiverCloseTimeout + time.Second):
		r.handBackAll()
		return fmt.Errorf("gcppubsub: receive from subscription %s did not stop within %v", r.path, receiverCloseTimeout)
	}
}

// handBackAll marks every pending delivery handed back: settling it later
// fails. The client has nacked them (see callback); Nack here only releases
// them from the client's lease keeping.
func (r *receiver) handBackAll() {
	r.mu.Lock()
	ds := make([]*delivery, 0, len(r.pending))
	for d := range r.pending {
		ds = append(ds, d)
	}
	r.mu.Unlock()
	for _, d := range ds {
		d.handBack()
	}
}

// deliveryState is where a delivery is in its life; guarded by receiver.mu.
type deliveryState int

const (
	statePending  deliveryState = iota // handed to a worker, not settled
	stateRetrying                      // Retry called: nack when the timer fires
	stateDone                          // acked or nacked
)

// delivery is one message in flight to a worker.
type delivery struct {
	r        *receiver
	m        *gpubsub.Message
	msg      *pubsub.Message // decoded once; Message returns copies
	released chan struct{}   // closed when the callback may return
	release  func()          // closes released, once

	state deliveryState // guarded by r.mu
	timer *time.Timer   // guarded by r.mu; set in stateRetrying
}

// Message implements pubsub.Delivery.
func (d *delivery) Message() *pubsub.Message { return d.msg.Clone() }

// settle moves d from state from to stateDone, or reports that it was not in
// state from (handed back by Close, or already settled).
func (d *delivery) settle(from deliveryState) error {
	r := d.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.state != from {
		return fmt.Errorf("gcppubsub: message %s of subscription %s already settled or handed back: %w", d.msg.ID, r.path, pubsub.ErrClosed)
	}
	d.state = stateDone
	delete(r.pending, d)
	r.lastSettle = time.Now()
	return nil
}

// Ack implements pubsub.Delivery. With exactly-once delivery enabled on the
// subscription it waits for Pub/Sub to confirm the ack; otherwise acks are
// sent in the background within about 100ms.
func (d *delivery) Ack(ctx context.Context) error {
	if err := d.settle(statePending); err != nil {
		return err
	}
	d.r.mu.Lock()
	delete(d.r.local, d.m.ID)
	d.r.mu.Unlock()
	res := d.m.AckWithResult()
	d.release()
	if _, err := res.Get(ctx); err != nil {
		return wrapErr(ctx, err, "ack message %s on subscription %s", d.msg.ID, d.r.path)
	}
	return nil
}

// Retry implements pubsub.Delivery: the message stays leased (the client
// keeps extending its ack deadline) and is nacked after delay, so Pub/Sub
// redelivers it then with its delivery attempt incremented. A message with
// an ordering key on an ordered subscription keeps its callback, and so its
// key, until the nack.
func (d *delivery) Retry(_ context.Context, delay time.Duration) error {
	r := d.r
	r.mu.Lock()
	if d.state != statePending {
		r.mu.Unlock()
		return fmt.Errorf("gcppubsub: message %s of subscription %s already settled or handed back: %w", d.msg.ID, r.path, pubsub.ErrClosed)
	}
	d.state = stateRetrying
	d.timer = time.AfterFunc(delay, d.nackAfterDelay)
	r.mu.Unlock()
	if !(r.ordered && d.m.OrderingKey != "") {
		d.release()
	}
	return nil
}

func (d *delivery) nackAfterDelay() {
	r := d.r
	r.mu.Lock()
	if d.state != stateRetrying || r.closed {
		r.mu.Unlock()
		return // closing: the client's shutdown nacks it (see callback)
	}
	d.state = stateDone
	delete(r.pending, d)
	r.lastSettle = time.Now()
	r.mu.Unlock()
	d.m.Nack()
	d.release()
}

// handBack marks d handed back unless it is settled, and nacks it, after
// the client's Receive stopped (see handBackAll).
func (d *delivery) handBack() {
	r := d.r
	r.mu.Lock()
	if d.state == stateDone {
		r.mu.Unlock()
		return
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	d.state = stateDone
	delete(r.pending, d)
	r.lastSettle = time.Now()
	r.mu.Unlock()
	d.m.Nack()
	d.release()
}
