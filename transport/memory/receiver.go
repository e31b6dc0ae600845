package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// receiver is one subscription's source of deliveries from its group.
type receiver struct {
	g      *group
	done   bool          // guarded by g.mu
	closed chan struct{} // closed with done set, to wake Receive
}

func newReceiver(g *group) *receiver { return &receiver{g: g, closed: make(chan struct{})} }

// Receive implements pubsub.Receiver.
func (r *receiver) Receive(ctx context.Context) (pubsub.Delivery, error) {
	g := r.g
	for {
		g.mu.Lock()
		if r.done {
			g.mu.Unlock()
			g.signal() // pass on a wake-up this call may have taken
			return nil, pubsub.ErrClosed
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
			return nil, pubsub.ErrClosed
		}
	}
}

// Close implements pubsub.Receiver: the receiver's unsettled messages go back
// to the front of the group's queue.
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
	attempt int // e.attempt when delivered: e may be delivered again after a release
	settled bool
}

// Message implements pubsub.Delivery.
func (d *delivery) Message() *pubsub.Message {
	m := d.e.msg.Clone()
	m.Attempt = d.attempt
	return m
}

// settle marks d settled, or reports that it already was (its receiver closed
// and handed it back).
func (d *delivery) settleLocked() error {
	if d.settled {
		return fmt.Errorf("memory: message %s of group %s already handed back: %w", d.e.msg.ID, d.g.name, pubsub.ErrClosed)
	}
	d.settled = true
	return nil
}

// Ack implements pubsub.Delivery.
func (d *delivery) Ack(context.Context) error {
	g := d.g
	g.mu.Lock()
	if err := d.settleLocked(); err != nil {
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

// Retry implements pubsub.Delivery: the message is requeued after delay, its
// key held back until then.
func (d *delivery) Retry(_ context.Context, delay time.Duration) error {
	g := d.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := d.settleLocked(); err != nil {
		return err
	}
	g.retryLater(d, delay)
	return nil
}
