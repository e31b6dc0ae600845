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
	// settleFlush is how long after an ack the client has surely sent it: it
	// sends acks every 100ms, and drops unsent ones when its streams close.
	settleFlush = 150 * time.Millisecond
	// maxLocalCounts bounds the map of locally counted deliveries.
	maxLocalCounts = 100_000
)

// receiverOptions are what a receiver needs besides the client's Subscriber.
type receiverOptions struct {
	path    string // subscription path, for errors
	ordered bool   // the subscription delivers keys in order
	// trustCount reports whether Pub/Sub's delivery attempt counts this
	// subscription's deliveries alone (see Broker.Subscribe).
	trustCount func() bool
	// recreate, if not nil, sets the subscription up again when Pub/Sub
	// reports it missing (deleted, or an emulator restarted empty).
	recreate func(context.Context) error
}

// receiver bridges the client's callback-based Subscriber.Receive to the
// portable loop's Receive calls. Each callback hands its message to a worker
// through ch and returns once the message is settled, so the client's flow
// control counts the messages being handled and its ordering scheduler does
// not start a key's next message early.
//
// Retries stay here: a message whose handler failed stays leased (the client
// extends its ack deadline) and is handed to a worker again after its
// backoff, with the next attempt number. Pub/Sub sees one delivery; the
// attempt number is its delivery count at receipt plus the retries made
// here.
type receiver struct {
	sub *gpubsub.Subscriber
	receiverOptions

	ch      chan *delivery
	errc    chan error    // the latest Receive failure, for the portable loop to log
	closing chan struct{} // closed by Close
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the client's Receive has returned for good

	mu      sync.Mutex
	closed  bool
	pending map[*delivery]struct{} // not acked: with a worker, waiting for one, or in backoff
	local   map[string]int         // deliveries seen here, by Pub/Sub message ID
	lastAck time.Time
}

// newReceiver starts receiving from sub, whose ReceiveSettings it completes
// with the shutdown behaviour Close relies on.
func newReceiver(sub *gpubsub.Subscriber, o receiverOptions) *receiver {
	sub.ReceiveSettings.ShutdownOptions = &gpubsub.ShutdownOptions{
		Timeout:  receiverCloseTimeout,
		Behavior: gpubsub.ShutdownBehaviorNackImmediately,
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &receiver{
		sub: sub, receiverOptions: o,
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
			r.report(ctx, fmt.Errorf("gcppubsub: receive from subscription %s: %w", r.path, err))
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

// report hands err to the next Receive call, after setting the
// subscription up again if err says it is missing.
func (r *receiver) report(ctx context.Context, err error) {
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

// callback is the client's message handler. It returns once the message is
// acked, or is waiting out a retry backoff without an ordering key to hold
// back, or when the client's Receive stops. It never nacks a message
// itself: the client, stopping, first closes its streams and then nacks
// every message it holds (ShutdownBehaviorNackImmediately); a nack sent
// while the streams are open could have Pub/Sub deliver the message straight
// back to this closing client, and one left to the client's background
// sender after the streams closed is dropped.
func (r *receiver) callback(ctx context.Context, m *gpubsub.Message) {
	trusted := m.DeliveryAttempt != nil && *m.DeliveryAttempt > 0 && r.trusted()
	d := newDelivery(r, m)
	r.mu.Lock()
	d.attempt = r.firstAttemptLocked(m, trusted)
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

// trusted reports whether Pub/Sub's delivery count can be used.
func (r *receiver) trusted() bool {
	if r.trustCount == nil {
		return true
	}
	return r.trustCount()
}

// firstAttemptLocked returns the attempt number of a delivery from Pub/Sub:
// Pub/Sub's count when it keeps one that can be trusted (subscriptions with
// a dead-letter policy, which every subscription the broker sets up has),
// else the number of deliveries of the message seen by this receiver.
func (r *receiver) firstAttemptLocked(m *gpubsub.Message, trusted bool) int {
	if len(r.local) >= maxLocalCounts {
		clear(r.local)
	}
	r.local[m.ID]++
	if trusted {
		return *m.DeliveryAttempt
	}
	return r.local[m.ID]
}

// Receive implements pubsub.Receiver.
func (r *receiver) Receive(ctx context.Context) (pubsub.Delivery, error) {
	for {
		select {
		case d := <-r.ch:
			r.mu.Lock()
			ok := d.state == statePending
			r.mu.Unlock()
			if ok { // not handed back on its way here
				return d, nil
			}
			continue
		case err := <-r.errc:
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.closing:
			return nil, pubsub.ErrClosed
		}
	}
}

// Close implements pubsub.Receiver. Workers' Receive calls return ErrClosed
// at once. Close then waits until the client has sent the latest acks and
// stops the client's Receive, which closes its streams, so that Pub/Sub
// delivers nothing more to them, and then nacks every message it holds:
// unsettled ones, those waiting out a retry backoff, and those not yet
// handed to a worker. Pub/Sub redelivers them at once to the group's other
// members.
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
		wait := settleFlush - time.Since(r.lastAck)
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
