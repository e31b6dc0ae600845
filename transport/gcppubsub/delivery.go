package gcppubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"

	"github.com/switchyard-go/switchyard/pubsub"
)

// deliveryState is where a delivery is in its life; guarded by receiver.mu.
type deliveryState int

const (
	statePending deliveryState = iota // with a worker, or on its way to one
	stateBackoff                      // Retry called: back to a worker when the timer fires
	stateDone                         // acked, or handed back to Pub/Sub
)

// delivery is one message from Pub/Sub, handed to a worker once per
// attempt.
type delivery struct {
	r        *receiver
	m        *gpubsub.Message
	msg      *pubsub.Message // decoded once, without Attempt; Message returns copies
	released chan struct{}   // closed when the client's callback may return
	release  func()          // closes released, once

	// attempt is the current attempt number; written before the delivery
	// goes to a worker through the receiver's channel, read by that worker.
	attempt int

	state deliveryState // guarded by r.mu
	timer *time.Timer   // guarded by r.mu; set in stateBackoff
}

func newDelivery(r *receiver, m *gpubsub.Message) *delivery {
	d := &delivery{r: r, m: m, msg: decode(m), released: make(chan struct{})}
	d.release = sync.OnceFunc(func() { close(d.released) })
	return d
}

// Message implements pubsub.Delivery.
func (d *delivery) Message() *pubsub.Message {
	m := d.msg.Clone()
	m.Attempt = d.attempt
	return m
}

func (d *delivery) settledErr() error {
	return fmt.Errorf("gcppubsub: message %s of subscription %s already settled or handed back: %w", d.msg.ID, d.r.path, pubsub.ErrClosed)
}

// Ack implements pubsub.Delivery. With exactly-once delivery enabled on the
// subscription it waits for Pub/Sub to confirm the ack; otherwise the client
// sends acks in the background within 100ms (Close waits for that).
func (d *delivery) Ack(ctx context.Context) error {
	r := d.r
	r.mu.Lock()
	if d.state != statePending {
		r.mu.Unlock()
		return d.settledErr()
	}
	d.state = stateDone
	delete(r.pending, d)
	delete(r.local, d.m.ID)
	r.lastAck = time.Now()
	r.mu.Unlock()
	res := d.m.AckWithResult()
	d.release()
	if _, err := res.Get(ctx); err != nil {
		return wrapErr(ctx, err, "ack message %s on subscription %s", d.msg.ID, r.path)
	}
	return nil
}

// Retry implements pubsub.Delivery: the message stays leased here (the
// client keeps extending its ack deadline) and goes to a worker again after
// delay with the next attempt number. Without an ordering key to hold back,
// the client's callback returns meanwhile, freeing its flow-control slot.
func (d *delivery) Retry(_ context.Context, delay time.Duration) error {
	r := d.r
	r.mu.Lock()
	if d.state != statePending {
		r.mu.Unlock()
		return d.settledErr()
	}
	d.state = stateBackoff
	d.timer = time.AfterFunc(delay, d.redeliver)
	r.mu.Unlock()
	if !(r.ordered && d.m.OrderingKey != "") {
		d.release()
	}
	return nil
}

// redeliver hands d to a worker again, unless the receiver is closing (the
// client's shutdown nacks it then).
func (d *delivery) redeliver() {
	r := d.r
	r.mu.Lock()
	if d.state != stateBackoff || r.closed {
		r.mu.Unlock()
		return
	}
	d.state = statePending
	d.attempt++
	r.mu.Unlock()
	select {
	case r.ch <- d:
	case <-r.closing:
	}
}

// handBack marks d handed back to Pub/Sub unless it was acked, and nacks
// it, after the client's Receive stopped (see receiver.handBackAll).
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
	r.mu.Unlock()
	d.m.Nack()
	d.release()
}
