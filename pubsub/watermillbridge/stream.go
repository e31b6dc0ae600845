package watermillbridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/pubsub"
)

var (
	errNacked  = errors.New("watermillbridge: message nacked")
	errClosing = fmt.Errorf("watermillbridge: subscription closing: %w", pubsub.ErrClosed)
)

// closedChan is a closed channel.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// stream is one Subscribe: a Switchyard subscription whose handler, deliver,
// sends each message on out and waits for watermill's verdict.
type stream struct {
	out       chan *message.Message
	ready     chan struct{} // closed once sub and stopping are set
	sub       *pubsub.Subscription
	stopping  <-chan struct{} // closed when the subscription starts to stop
	outClosed chan struct{}   // closed after out
	done      chan struct{}   // closed when out is closed and every handler returned

	mu      sync.Mutex
	shut    bool           // no deliver may send on out any more; guarded by mu
	senders sync.WaitGroup // delivers between their check of shut and the end of their send; Add under mu while !shut
}

func newStream() *stream {
	return &stream{out: make(chan *message.Message), ready: make(chan struct{}),
		outClosed: make(chan struct{}), done: make(chan struct{})}
}

// start lets deliver run on sub, and closes out once sub starts to stop.
func (st *stream) start(sub *pubsub.Subscription) {
	st.sub, st.stopping = sub, sub.Stopping()
	close(st.ready)
	go func() {
		<-st.stopping
		st.mu.Lock()
		st.shut = true
		st.mu.Unlock()
		st.senders.Wait() // each send gives up: stopping is closed
		close(st.out)
		close(st.outClosed)
		<-sub.Done()
		close(st.done)
	}()
}

// abandon makes deliver hand back anything it gets, when Subscribe failed
// (a handler may have started before the subscription was closed again).
func (st *stream) abandon() {
	st.stopping = closedChan
	close(st.ready)
}

// deliver is the Switchyard handler: it hands the message to the watermill
// consumer and waits for its verdict. If the subscription starts to stop
// first, it takes the message back and returns an error wrapping
// pubsub.ErrClosed, so that the message is handed back untouched.
func (st *stream) deliver(ctx context.Context, m *pubsub.Message) error {
	select {
	case <-st.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	wm := message.NewMessage(m.ID, m.Payload)
	maps.Copy(wm.Metadata, m.Metadata)
	if m.Key != "" {
		wm.Metadata.Set(MetadataKey, m.Key)
	}
	wm.Metadata.Set(MetadataAttempt, strconv.Itoa(m.Attempt))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel() // settled: watermill cancels a message's context on Ack or Nack
	wm.SetContext(wctx)
	if err := st.send(ctx, wm); err != nil {
		return err
	}
	select {
	case <-wm.Acked():
		return nil
	case <-wm.Nacked():
		return errNacked
	case <-st.stopping:
	case <-ctx.Done():
	}
	return takeBack(wm, ctx.Err())
}

// send sends wm on out, unless the subscription stops first.
func (st *stream) send(ctx context.Context, wm *message.Message) error {
	st.mu.Lock()
	if st.shut {
		st.mu.Unlock()
		return errClosing
	}
	st.senders.Add(1)
	st.mu.Unlock()
	defer st.senders.Done()
	select {
	case <-st.stopping: // taken first: a stopping subscription sends nothing more
		return errClosing
	default:
	}
	select {
	case st.out <- wm:
		return nil
	case <-st.stopping:
		return errClosing
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeBack settles wm, which watermill holds unsettled while the
// subscription stops (or its handler context ended: cerr), for the broker:
// a Nack that watermill made meanwhile stands; otherwise the bridge Nacks
// wm itself, so that a later Ack returns false, and the message is handed
// back untouched; an Ack that came first stands.
func takeBack(wm *message.Message, cerr error) error {
	select {
	case <-wm.Nacked():
		return errNacked
	default:
	}
	if !wm.Nack() {
		return nil // Acked first
	}
	if cerr != nil {
		return cerr
	}
	return errClosing
}
