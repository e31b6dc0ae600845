package gcppubsub

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// deliveryState is where a delivery is in its life; guarded by receiver.mu.
type deliveryState int

const (
	statePending deliveryState = iota // with a worker, or on its way to one
	stateBackoff                      // waiting out a retry backoff here
	stateDone                         // settled, or handed back to Pub/Sub
)

// delivery is one message from Pub/Sub, handed to a worker once per
// attempt made here.
type delivery struct {
	rc    *receiver
	m     *gpubsub.Message
	in    received
	keyed bool // it holds its ordering key (ordered subscription, Key set)
	// natural is the Attempt this delivery has before adjustments (see
	// receiver.count); step is 1 when Pub/Sub counts a redelivery after a
	// nack, else 0.
	natural, step int

	released chan struct{} // closed when the client's callback may return
	release  func()        // closes released, once

	// attempt is the current attempt number; written before the delivery
	// goes to a worker through the receiver's channel, read by that worker.
	attempt int

	state deliveryState // guarded by rc.mu
	timer *time.Timer   // guarded by rc.mu; set in stateBackoff
	next  int           // guarded by rc.mu; the Attempt after the backoff
	due   time.Time     // guarded by rc.mu; when the backoff ends
}

// newDelivery decodes m and works out its Attempt.
func (rc *receiver) newDelivery(m *gpubsub.Message) *delivery {
	d := &delivery{rc: rc, m: m, in: decode(m), released: make(chan struct{})}
	d.release = sync.OnceFunc(func() { close(d.released) })
	d.keyed = m.OrderingKey != "" && rc.state().ordered
	rc.count(d)
	d.attempt = max(d.natural+rc.b.adjust.get(rc.r.subPath, m.ID), 1)
	return d
}

// Message implements driver.Delivery: a new copy on each call.
func (d *delivery) Message() *driver.Message {
	m := *d.in.msg
	m.Metadata = maps.Clone(m.Metadata)
	if m.Payload != nil {
		m.Payload = append([]byte(nil), m.Payload...)
	}
	m.Attempt = d.attempt
	return &m
}

func (d *delivery) settledErr() error {
	return fmt.Errorf("gcppubsub: message %s of subscription %s already settled or handed back: %w", d.in.msg.ID, d.rc.r.subPath, driver.ErrClosed)
}

// doneLocked marks d settled; rc.mu is held.
func (d *delivery) doneLocked() {
	d.state = stateDone
	delete(d.rc.pending, d)
	if d.timer != nil {
		d.timer.Stop()
	}
}

// take marks d settled if it is with a worker, or reports why not.
func (d *delivery) take() error {
	rc := d.rc
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if d.state != statePending {
		return d.settledErr()
	}
	d.doneLocked()
	return nil
}

// Ack implements driver.Delivery. With exactly-once delivery enabled on the
// subscription it waits for Pub/Sub to confirm the ack; otherwise the client
// sends acks in the background within 100ms (and when it stops).
func (d *delivery) Ack(ctx context.Context) error {
	if err := d.take(); err != nil {
		return err
	}
	return d.ack(ctx)
}

// ack acks d's message, which is settled here.
func (d *delivery) ack(ctx context.Context) error {
	rc := d.rc
	rc.b.adjust.set(rc.r.subPath, d.m.ID, 0)
	res := d.m.AckWithResult()
	rc.settled()
	d.release()
	if _, err := res.Get(ctx); err != nil {
		return wrapErr(ctx, err, "ack message %s on subscription %s", d.in.msg.ID, rc.r.subPath)
	}
	return nil
}

// Retry implements driver.Delivery. Where Pub/Sub keeps the backoff and
// the count (the subscription has a retry policy and a dead-letter policy,
// and no ordering key is held) the message is nacked: it waits out its
// backoff on Pub/Sub, outside this member's flow-control window, and comes
// back, to any member, counted. A message whose next Attempt Pub/Sub cannot
// count (the portable layer hands back a parked dead letter with an Attempt
// past the maximum) is published again for its group carrying that Attempt.
// Otherwise, for a message that holds its ordering key, or on an emulator,
// the message stays leased here (the client keeps extending its ack
// deadline) and goes to a worker again after delay.
func (d *delivery) Retry(ctx context.Context, delay time.Duration, attempt int) error {
	rc := d.rc
	st := rc.state()
	rc.mu.Lock()
	if d.state != statePending {
		rc.mu.Unlock()
		return d.settledErr()
	}
	if d.keyed || !st.counts || !st.delays {
		d.holdLocked(delay, attempt)
		rc.mu.Unlock()
		return nil
	}
	d.doneLocked()
	rc.mu.Unlock()
	if attempt != d.attempt+1 {
		var notBefore time.Time
		if delay > 0 {
			notBefore = time.Now().Add(delay)
		}
		return d.handBack(ctx, attempt, notBefore)
	}
	d.m.Nack()
	d.rc.settled()
	d.release()
	return nil
}

// holdLocked keeps d here for delay, then hands it to a worker with the
// given attempt; rc.mu is held.
func (d *delivery) holdLocked(delay time.Duration, attempt int) {
	d.state = stateBackoff
	d.next = attempt
	d.due = time.Now().Add(delay)
	d.timer = time.AfterFunc(delay, d.redeliver)
	if !d.keyed {
		d.release()
	}
}

// redeliver hands d to a worker again, unless the receiver is closing
// (Close hands it back then).
func (d *delivery) redeliver() {
	rc := d.rc
	rc.mu.Lock()
	if d.state != stateBackoff || rc.closed {
		rc.mu.Unlock()
		return
	}
	d.state = statePending
	d.attempt = d.next
	rc.mu.Unlock()
	select {
	case rc.ch <- d:
	case <-rc.closing:
	}
}

// Release implements driver.Delivery: the message goes back to the group
// untouched, its next delivery with the same Attempt (see "Delivery
// semantics").
func (d *delivery) Release(ctx context.Context) error {
	if err := d.take(); err != nil {
		return err
	}
	return d.handBack(ctx, d.attempt, time.Time{})
}

// handBack gives d's message back to its group, settled here, so that its
// next delivery has the given Attempt, not before notBefore when that is
// set. Without an ordering key to keep, and when the group's subscription
// has its filter, it publishes the message again for this group alone,
// carrying the Attempt (and notBefore), and acks it: Pub/Sub's count starts
// again and the hand-back holds in every process. Otherwise it nacks it and
// remembers here how far Pub/Sub's count will be off.
func (d *delivery) handBack(ctx context.Context, attempt int, notBefore time.Time) error {
	rc := d.rc
	if !d.keyed && rc.state().filtered {
		err := rc.b.sendBack(ctx, rc.r, d.in.msg, handBack{to: rc.r.to, attempt: attempt, notBefore: notBefore})
		if err == nil {
			return d.ack(ctx)
		}
		rc.log.Warn("gcppubsub: could not publish a handed-back message again for its group; nacking it, which counts a delivery attempt",
			"subscription", rc.r.subPath, "message_id", d.in.msg.ID, "err", err)
	}
	rc.b.adjust.set(rc.r.subPath, d.m.ID, attempt-(d.natural+d.step))
	d.m.Nack()
	d.rc.settled()
	d.release()
	return nil
}

// DeadLetter implements driver.Delivery: dl goes to the group's dead-letter
// topic, and once Pub/Sub accepted it the message is acked.
func (d *delivery) DeadLetter(ctx context.Context, dl *driver.Message) error {
	rc := d.rc
	rc.mu.Lock()
	ok := d.state == statePending
	rc.mu.Unlock()
	if !ok {
		return d.settledErr()
	}
	if err := rc.b.storeDeadLetter(ctx, rc.r, dl); err != nil {
		return err
	}
	if err := d.take(); err != nil {
		return err
	}
	return d.ack(ctx)
}

// closeOut hands d back as Close does: untouched when it waits for a
// worker; a message waiting out a backoff here keeps its schedule where the
// broker can (see handBack and "Delivery semantics"): published again for its
// group with the rest of its backoff, or, holding its ordering key, nacked
// (where the subscription has a retry policy, Pub/Sub waits out a backoff
// again).
func (d *delivery) closeOut(ctx context.Context) {
	rc := d.rc
	rc.mu.Lock()
	s, next, due := d.state, d.next, d.due
	if s == stateDone {
		rc.mu.Unlock()
		return
	}
	d.doneLocked()
	rc.mu.Unlock()
	switch s {
	case statePending:
		_ = d.handBack(ctx, d.attempt, time.Time{})
	case stateBackoff:
		_ = d.handBack(ctx, next, due)
	}
}
