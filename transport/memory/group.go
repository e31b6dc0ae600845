package memory

import (
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// entry is one message held by a group. msg is immutable and shared by every
// group of the topic; attempt is the Attempt of its next delivery (1, then
// what Retry set), guarded by the group's mu.
type entry struct {
	msg     *driver.Message
	attempt int
}

// slot is an element of a group's ready queue: a message without a key, or
// (key != "") a token saying that the key's oldest message may be delivered.
type slot struct {
	e   *entry
	key string
}

// group is a consumer group's queue. Messages with a key wait in the key's own
// FIFO; the ready queue holds at most one token per key, and none while a
// message of that key is in flight or waiting for its redelivery, so each key
// is delivered one message at a time, in publish order.
type group struct {
	topic *topic
	name  string

	mu       sync.Mutex
	ready    deque[slot]
	keys     map[string]*deque[*entry] // waiting messages per key
	busy     map[string]bool           // keys with a message in flight or in backoff
	held     int                       // messages held: waiting, in flight, in backoff
	notify   chan struct{}             // a token when the ready queue may be non-empty
	inFlight map[*delivery]struct{}
	dead     deque[*driver.Message] // dead letters, oldest first
	deleted  bool                   // DeleteGroup removed it: it takes and gives nothing
	noDead   error                  // tests: when set, storing dead letters fails with it
}

func newGroup(t *topic, name string) *group {
	return &group{
		topic:    t,
		name:     name,
		keys:     map[string]*deque[*entry]{},
		busy:     map[string]bool{},
		notify:   make(chan struct{}, 1),
		inFlight: map[*delivery]struct{}{},
	}
}

// signal wakes one waiting receiver; it passes the wake-up on if it leaves
// messages behind.
func (g *group) signal() {
	select {
	case g.notify <- struct{}{}:
	default:
	}
}

// enqueueLocked adds a newly published message.
func (g *group) enqueueLocked(e *entry) {
	if g.deleted {
		return
	}
	g.held++
	if e.msg.Key == "" {
		g.ready.PushBack(slot{e: e})
		return
	}
	q := g.keys[e.msg.Key]
	if q == nil {
		q = &deque[*entry]{}
		g.keys[e.msg.Key] = q
	}
	q.PushBack(e)
	if q.Len() == 1 && !g.busy[e.msg.Key] {
		g.ready.PushBack(slot{key: e.msg.Key})
	}
}

// takeLocked removes the next deliverable message for r, or returns nil.
func (g *group) takeLocked(r *receiver) *delivery {
	s, ok := g.ready.PopFront()
	if !ok {
		return nil
	}
	e := s.e
	if s.key != "" {
		q := g.keys[s.key]
		e, _ = q.PopFront()
		if q.Len() == 0 {
			delete(g.keys, s.key)
		}
		g.busy[s.key] = true
	}
	d := &delivery{g: g, r: r, e: e, attempt: e.attempt}
	g.inFlight[d] = struct{}{}
	return d
}

// doneLocked settles d for good (ack): the group lets go of its message and
// frees its key for the next message of that key.
func (g *group) doneLocked(d *delivery) {
	delete(g.inFlight, d)
	g.held--
	if k := d.e.msg.Key; k != "" {
		delete(g.busy, k)
		if q := g.keys[k]; q != nil && q.Len() > 0 {
			g.ready.PushBack(slot{key: k})
		}
	}
}

// requeueLocked puts e back at the front of its queue for redelivery, after a
// retry's backoff or when its receiver closed; its key stays first in line.
func (g *group) requeueLocked(e *entry) {
	if g.deleted {
		return
	}
	k := e.msg.Key
	if k == "" {
		g.ready.PushFront(slot{e: e})
		return
	}
	q := g.keys[k]
	if q == nil {
		q = &deque[*entry]{}
		g.keys[k] = q
	}
	q.PushFront(e)
	delete(g.busy, k)
	g.ready.PushFront(slot{key: k})
}

// retryLater takes d out of flight and requeues its message after delay,
// to be delivered with Attempt attempt.
func (g *group) retryLater(d *delivery, delay time.Duration, attempt int) {
	delete(g.inFlight, d)
	d.e.attempt = attempt
	time.AfterFunc(delay, func() {
		g.mu.Lock()
		g.requeueLocked(d.e)
		g.mu.Unlock()
		g.signal()
	})
}
