package nats

import (
	"sync"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// acks routes the outcomes of asynchronous publishes, which the JetStream
// context reports to one pair of callbacks, to the batches waiting for
// them: cheaper than a pair of channels per message. It is safe for
// concurrent use.
type acks struct {
	mu sync.Mutex
	m  map[*natsgo.Msg]ackSlot
}

// ackSlot is where the outcome of one message goes: index i of w.
type ackSlot struct {
	w *batchWait
	i int
}

// batchWait collects the outcomes of the messages of one publish round.
type batchWait struct {
	mu   sync.Mutex
	left int
	errs []error // by index; nil for acknowledged
	done chan struct{}
}

func newBatchWait(n int) *batchWait {
	return &batchWait{errs: make([]error, n), done: make(chan struct{})}
}

// expect registers m, which is about to be published, as message i of w.
func (a *acks) expect(m *natsgo.Msg, w *batchWait, i int) {
	w.mu.Lock()
	w.left++
	w.mu.Unlock()
	a.mu.Lock()
	if a.m == nil {
		a.m = map[*natsgo.Msg]ackSlot{}
	}
	a.m[m] = ackSlot{w, i}
	a.mu.Unlock()
}

// resolve reports m's outcome to its batch, if one still waits for it.
func (a *acks) resolve(m *natsgo.Msg, err error) {
	a.mu.Lock()
	s, ok := a.m[m]
	delete(a.m, m)
	a.mu.Unlock()
	if !ok {
		return
	}
	s.w.mu.Lock()
	s.w.errs[s.i] = err
	s.w.left--
	if s.w.left == 0 {
		close(s.w.done)
	}
	s.w.mu.Unlock()
}

// forget stops waiting for m; it reports whether m was still awaited.
func (a *acks) forget(m *natsgo.Msg) bool {
	a.mu.Lock()
	_, ok := a.m[m]
	delete(a.m, m)
	a.mu.Unlock()
	return ok
}

// onAck and onErr are the JetStream context's callbacks.
func (a *acks) onAck(_ jetstream.JetStream, m *natsgo.Msg, _ *jetstream.PubAck) { a.resolve(m, nil) }
func (a *acks) onErr(_ jetstream.JetStream, m *natsgo.Msg, err error)           { a.resolve(m, err) }
