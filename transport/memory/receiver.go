package memory

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// receiver is one subscription's source of deliveries from its group.
type receiver struct {
	g      *group
	done   bool          // guarded by g.mu
	closed chan struct{} // closed with done set, to wake Receive
}

func newReceiver(g *group) *receiver { return &receiver{g: g, closed: make(chan struct{})} }

// Receive implements driver.Subscription.
func (r *receiver) Receive(ctx context.Context) (driver.Delivery, error) {
	g := r.g
	for {
		g.mu.Lock()
		if r.done {
			g.mu.Unlock()
			g.signal() // pass on a wake-up this call may have taken
			return nil, driver.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			g.mu.Unlock()
			g.signal()
			return nil, err
		}
		d := g.takeLocked(r)
		more := g.ready.Len() > 0
		g.mu.Unlock()
		if d != nil {
			if more {
				g.signal()
			}
			return d, nil
		}
		select {
		case <-g.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.closed:
			return nil, driver.ErrClosed
		}
	}
}

// Close implements driver.Subscription: the receiver's unsettled messages go
// back to the front of the group's queue, untouched.
func (r *receiver) Close() error {
	g := r.g
	g.mu.Lock()
	if r.done {
		g.mu.Unlock()
		return nil
	}
	r.done = true
	close(r.closed)
	n := 0
	for d := range g.inFlight {
		if d.r == r {
			delete(g.inFlight, d)
			d.settled = true
			g.requeueLocked(d.e)
			n++
		}
	}
	g.mu.Unlock()
	if n > 0 {
		g.signal()
	}
	return nil
}

// delivery is a message in flight to one receiver. Its fields other than
// settled are immutable; settled is guarded by g.mu.
type delivery struct {
	g       *group
	r       *receiver
	e       *entry
	attempt int // e.attempt when delivered
	settled bool

	msg   driver.Message // the first copy Message returns, allocated with d
	given bool           // msg was returned
}

// Message implements driver.Delivery: a new copy on each call (the first
// one allocated with the delivery). The portable layer calls it from one
// goroutine at a time.
func (d *delivery) Message() *driver.Message {
	if d.given {
		return clone(d.e.msg, d.attempt)
	}
	d.given = true
	m := d.e.msg
	d.msg = driver.Message{ID: m.ID, Key: m.Key, Attempt: d.attempt}
	if m.Metadata != nil {
		d.msg.Metadata = maps.Clone(m.Metadata)
	}
	if m.Payload != nil {
		d.msg.Payload = append([]byte(nil), m.Payload...)
	}
	return &d.msg
}

// settleLocked marks d settled, or reports that it already was (its
// receiver closed and handed it back). done reports that there is nothing
// to do: the group was deleted.
func (d *delivery) settleLocked() (done bool, err error) {
	if d.settled {
		return true, fmt.Errorf("memory: message %s of group %s already handed back: %w", d.e.msg.ID, d.g.name, driver.ErrClosed)
	}
	d.settled = true
	return d.g.deleted, nil
}

// Ack implements driver.Delivery.
func (d *delivery) Ack(context.Context) error {
	g := d.g
	g.mu.Lock()
	if done, err := d.settleLocked(); done {
		g.mu.Unlock()
		return err
	}
	g.doneLocked(d)
	more := g.ready.Len() > 0
	g.mu.Unlock()
	if more && d.e.msg.Key != "" {
		g.signal() // the key's next message may be waiting
	}
	g.topic.freed()
	return nil
}

// Retry implements driver.Delivery: the message is requeued after delay, its
// key held back until then.
func (d *delivery) Retry(_ context.Context, delay time.Duration, attempt int) error {
	g := d.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if done, err := d.settleLocked(); done {
		return err
	}
	g.retryLater(d, delay, attempt)
	return nil
}

// Release implements driver.Delivery: the message goes back to the front of
// the queue at once, with the same Attempt.
func (d *delivery) Release(context.Context) error {
	g := d.g
	g.mu.Lock()
	if done, err := d.settleLocked(); done {
		g.mu.Unlock()
		return err
	}
	delete(g.inFlight, d)
	g.requeueLocked(d.e)
	g.mu.Unlock()
	g.signal()
	return nil
}

// DeadLetter implements driver.Delivery: dl joins the group's dead letters
// and the message leaves the group, in one step. When the dead letters are
// full it fails and the delivery stays unsettled.
func (d *delivery) DeadLetter(_ context.Context, dl *driver.Message) error {
	g := d.g
	g.mu.Lock()
	if d.settled || g.deleted {
		_, err := d.settleLocked()
		g.mu.Unlock()
		return err
	}
	if err := g.storeDeadLocked(dl); err != nil {
		g.mu.Unlock()
		return err
	}
	d.settled = true
	g.doneLocked(d)
	more := g.ready.Len() > 0
	g.mu.Unlock()
	if more && d.e.msg.Key != "" {
		g.signal()
	}
	g.topic.freed()
	return nil
}
