package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

const (
	// receiverCloseTimeout bounds how long Close waits for hand-backs and
	// for the client's Receive to return.
	receiverCloseTimeout = 10 * time.Second
	// ackFlush is how long Close gives the client, once its Receive has
	// returned, to send the last acks: it sends them as soon as every
	// message it held is settled, in the background.
	ackFlush = 100 * time.Millisecond
	// settleSend is how long after an ack or nack Close waits before it
	// stops the client's Receive. The client queues acks and nacks and
	// sends the queue every 100ms; stopping cancels its streams first, and
	// once a stream fails the client's sender returns without sending what
	// is still queued (cloud.google.com/go/pubsub/v2 v2.9.0, iterator.go:
	// sender), so an ack made just before Close was lost about half the
	// time (TestLongHandler) and the message came back after its ack
	// deadline. A send the sender already took is not cut.
	settleSend = 250 * time.Millisecond
)

// receiver is one member of a group: it bridges the client's callback-based
// Subscriber.Receive to the portable loop's Receive calls. Each callback
// hands its message to a worker through ch and returns once the message is
// settled (or, without an ordering key to hold, once it waits out a retry
// backoff here), so the client's flow control counts the messages being
// handled and its ordering scheduler does not start a key's next message
// early.
type receiver struct {
	b     *broker
	r     groupRefs
	log   *slog.Logger
	sub   *gpubsub.Subscriber
	setUp func(context.Context) (subState, error) // sets the group up again when it is missing

	stMu sync.RWMutex
	st   subState

	ch      chan *delivery
	errc    chan error    // the latest Receive failure, for the portable loop to log
	closing chan struct{} // closed by Close
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the client's Receive has returned for good

	mu      sync.Mutex
	closed  bool
	pending map[*delivery]struct{} // not settled: with a worker, waiting for one, or in backoff

	lastSettle atomic.Int64 // UnixNano of the last ack or nack queued on the client
}

// settled records that an ack or nack was just queued on the client.
func (rc *receiver) settled() { rc.lastSettle.Store(time.Now().UnixNano()) }

// waitSettlesSent waits until the client has surely taken the acks and
// nacks queued so far (settleSend after the last one).
func (rc *receiver) waitSettlesSent() {
	last := rc.lastSettle.Load()
	if last == 0 {
		return
	}
	if wait := time.Until(time.Unix(0, last).Add(settleSend)); wait > 0 {
		time.Sleep(wait) // the client's ack ticker: no signal to wait on
	}
}

// newReceiver starts receiving the group's messages for one member.
func newReceiver(b *broker, r groupRefs, st subState, setUp func(context.Context) (subState, error), cfg driver.SubscribeConfig) *receiver {
	sub := b.client.Subscriber(r.subPath)
	// The client fetches ahead at most twice the handlers (and tells
	// Pub/Sub so: server-side flow control; see window for emulators).
	sub.ReceiveSettings.MaxOutstandingMessages = b.window(cfg.Concurrency)
	sub.ReceiveSettings.NumGoroutines = b.cfg.ReceiveStreams
	// Pub/Sub leases what it sends on a stream for this long until the
	// client extends it (the client's default is 60s), and the client
	// extends by at most this much (and at least 10s) at a time: what a
	// closing or crashed member holds, or was sent but did not read, comes
	// back after the ack deadline.
	sub.ReceiveSettings.MaxDurationPerAckExtension = b.streamDeadline()
	// Leases are extended through every retry backoff held here too: an
	// hour (the client's default) plus the longest schedule of backoffs.
	sub.ReceiveSettings.MaxExtension = time.Hour + time.Duration(cfg.MaxAttempts)*cfg.BackoffMax
	// Stopping, the client closes its streams at once, so that Pub/Sub
	// sends nothing more that nobody would read, then waits for the
	// callbacks (which hand back what they hold, see Close), nacks what it
	// had not passed to a callback yet, and sends the last acks.
	sub.ReceiveSettings.ShutdownOptions = &gpubsub.ShutdownOptions{
		Timeout:  receiverCloseTimeout,
		Behavior: gpubsub.ShutdownBehaviorWaitForProcessing,
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &receiver{
		b: b, r: r, log: cfg.Logger, sub: sub, setUp: setUp, st: st,
		ch: make(chan *delivery), errc: make(chan error, 1), closing: make(chan struct{}),
		cancel: cancel, stopped: make(chan struct{}),
		pending: map[*delivery]struct{}{},
	}
	go rc.run(ctx)
	return rc
}

func (rc *receiver) state() subState {
	rc.stMu.RLock()
	defer rc.stMu.RUnlock()
	return rc.st
}

// run keeps the client's Receive going until Close, restarting it after a
// pause when it fails (a deleted subscription, lost permissions; transient
// errors the client retries itself).
func (rc *receiver) run(ctx context.Context) {
	defer close(rc.stopped)
	pause := 100 * time.Millisecond
	for {
		started := time.Now()
		err := rc.sub.Receive(ctx, rc.callback)
		if ctx.Err() != nil {
			return // Close hands back what is pending
		}
		// Receive failed: the client has closed its streams, and what it
		// held comes back after its ack deadline; what is pending here only
		// needs its bookkeeping.
		rc.forgetAll()
		if err != nil {
			rc.report(ctx, fmt.Errorf("gcppubsub: receive from subscription %s: %w", rc.r.subPath, err))
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

// report hands err to the next Receive call, after setting the group up
// again if err says its subscription is missing.
func (rc *receiver) report(ctx context.Context, err error) {
	if status.Code(err) == codes.NotFound && !rc.b.cfg.DisableAutoCreate {
		rc.b.admin.forgetTopic(rc.r.topicPath)
		rc.b.admin.forgetTopic(rc.r.deadTopic)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		st, rerr := rc.setUp(rctx)
		cancel()
		if rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			rc.stMu.Lock()
			rc.st = st
			rc.stMu.Unlock()
			err = fmt.Errorf("%w (it was missing and has been set up again)", err)
		}
	}
	select {
	case <-rc.errc: // replace an unread older failure
	default:
	}
	rc.errc <- err
}

// callback is the client's message handler. It returns once the message is
// settled, or is waiting out a retry backoff without an ordering key to
// hold, or when the client's Receive fails (Pub/Sub then delivers what was
// not settled again after its ack deadline).
func (rc *receiver) callback(ctx context.Context, m *gpubsub.Message) {
	d := rc.newDelivery(m)
	rc.mu.Lock()
	if rc.closed {
		// Received before the streams closed: hand it back here (the
		// client's Receive returns, and Close with it, once every callback
		// has).
		rc.mu.Unlock()
		d.state = stateDone
		hctx, cancel := context.WithTimeout(context.Background(), receiverCloseTimeout)
		defer cancel()
		d.handBack(hctx, d.attempt, time.Time{})
		return
	}
	rc.pending[d] = struct{}{}
	if wait := time.Until(d.in.notBefore); wait > 0 {
		// The rest of a backoff a closing member handed back.
		d.holdLocked(wait, d.attempt)
		rc.mu.Unlock()
	} else {
		rc.mu.Unlock()
		rc.offer(ctx, d)
	}
	select {
	case <-d.released:
	case <-ctx.Done():
		if rc.isClosed() {
			<-d.released // Close hands it back
		}
	}
}

func (rc *receiver) isClosed() bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.closed
}

// offer hands d to a worker, unless the receiver closes (Close hands it
// back) or the client's Receive fails (Pub/Sub delivers it again after its
// ack deadline) first.
func (rc *receiver) offer(ctx context.Context, d *delivery) {
	select {
	case rc.ch <- d:
	case <-rc.closing:
	case <-ctx.Done():
	}
}

// Receive implements driver.Subscription.
func (rc *receiver) Receive(ctx context.Context) (driver.Delivery, error) {
	for {
		select {
		case d := <-rc.ch:
			rc.mu.Lock()
			ok := d.state == statePending
			rc.mu.Unlock()
			if ok { // not handed back on its way here
				return d, nil
			}
		case err := <-rc.errc:
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-rc.closing:
			return nil, driver.ErrClosed
		}
	}
}

// Close implements driver.Subscription. Workers' Receive calls return
// ErrClosed at once. Close stops the client's Receive, which closes its
// streams first, so that Pub/Sub sends nothing more; then it hands back
// every message not settled (see "Delivery semantics": those waiting for a
// worker untouched, those waiting out a backoff), and those the client
// received before its streams closed, and waits for the client to send the
// last acks.
func (rc *receiver) Close() error {
	rc.mu.Lock()
	if rc.closed {
		rc.mu.Unlock()
		return nil
	}
	rc.closed = true
	ds := make([]*delivery, 0, len(rc.pending))
	for d := range rc.pending {
		ds = append(ds, d)
	}
	rc.mu.Unlock()
	close(rc.closing)
	rc.waitSettlesSent()
	rc.cancel()

	ctx, cancel := context.WithTimeout(context.Background(), receiverCloseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { d.closeOut(ctx) })
	}
	wg.Wait()
	select {
	case <-rc.stopped:
		time.Sleep(ackFlush)
		return nil
	case <-time.After(receiverCloseTimeout + time.Second):
		rc.forgetAll()
		return fmt.Errorf("gcppubsub: receive from subscription %s did not stop within %v", rc.r.subPath, receiverCloseTimeout)
	}
}

// forgetAll marks every pending delivery done, after the client's Receive
// failed: settling one later fails.
func (rc *receiver) forgetAll() {
	rc.mu.Lock()
	ds := make([]*delivery, 0, len(rc.pending))
	for d := range rc.pending {
		ds = append(ds, d)
	}
	for _, d := range ds {
		d.doneLocked()
	}
	rc.mu.Unlock()
	for _, d := range ds {
		d.release()
	}
}
