package pubsub

import (
	"context"
	"fmt"
	"sync"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Subscription is a running member of a consumer group: Concurrency workers
// receive messages and run the handler, then settle each message with the
// broker (ack, retry after a backoff, or dead-letter).
//
// A Subscription is safe for concurrent use. Stop it with Close or Shutdown.
type Subscription struct {
	cfg subscribeConfig
	ds  driver.Subscription
	c   *Client
	h   Handler // with the middleware around it

	receiveCtx     context.Context // cancelled when the subscription starts to stop
	stopReceiving  context.CancelFunc
	handlerCtx     context.Context // cancelled when Shutdown's deadline passes
	cancelHandlers context.CancelFunc
	settleCtx      context.Context // for settling with the broker: never cancelled
	stopWatch      func() bool     // stops the Subscribe-context watcher

	workers sync.WaitGroup
	slots   []slot // one per worker: the delivery its handler runs
	// settling counts the workers settling a delivery (or parking one);
	// Shutdown's deadline shuts it, so that no worker starts settling
	// afterwards, and waits for those that did before the driver closes.
	settling gate

	stopOnce sync.Once
	shutDown chan struct{} // closed when Shutdown's work is done
	stopped  chan struct{} // closed when, besides, every handler returned
	stopErr  error
}

// slot is where a worker shows the delivery whose handler it runs, so that
// Shutdown can hand it back when its deadline passes. Whoever clears active
// (the worker when the handler returns, or Shutdown at its deadline)
// settles the delivery.
type slot struct {
	mu     sync.Mutex
	f      inflight
	active bool
}

// begin shows f as running in the slot.
func (sl *slot) begin(f inflight) {
	sl.mu.Lock()
	sl.f, sl.active = f, true
	sl.mu.Unlock()
}

// claim takes the running delivery out of the slot, reporting whether there
// was one still to settle.
func (sl *slot) claim() (inflight, bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	f, ok := sl.f, sl.active
	sl.f, sl.active = inflight{}, false
	return f, ok
}

// inflight is one delivery being handled.
type inflight struct {
	d       driver.Delivery
	msg     *Message
	attempt int             // msg.Attempt on arrival: the handler may change msg
	ctx     context.Context // the handler's, from the observers' OnReceive
}

// startSubscription starts the delivery loop on ds. The subscription shuts
// down, as Close does, when ctx is done; values of ctx reach handlers.
func startSubscription(ctx context.Context, cfg subscribeConfig, ds driver.Subscription, c *Client, h Handler) *Subscription {
	for i := len(cfg.middleware) - 1; i >= 0; i-- {
		h = cfg.middleware[i](h)
	}
	s := &Subscription{cfg: cfg, ds: ds, c: c, h: h, slots: make([]slot, cfg.concurrency),
		shutDown: make(chan struct{}), stopped: make(chan struct{})}
	base := context.WithoutCancel(ctx)
	s.receiveCtx, s.stopReceiving = context.WithCancel(base)
	s.handlerCtx, s.cancelHandlers = context.WithCancel(base)
	s.settleCtx = base
	s.workers.Add(cfg.concurrency)
	for i := range cfg.concurrency {
		go s.work(&s.slots[i])
	}
	watching := make(chan struct{}) // stopWatch is set
	s.stopWatch = context.AfterFunc(ctx, func() { <-watching; _ = s.Close() })
	close(watching)
	return s
}

// Stopping returns a channel that is closed when the subscription starts to
// shut down (Close, Shutdown, the end of Subscribe's context, or its
// broker's Shutdown): from then on it takes no new message. A handler
// waiting on something else can select on it and return an error wrapping
// ErrClosed to hand its message back untouched.
func (s *Subscription) Stopping() <-chan struct{} { return s.receiveCtx.Done() }

// Done returns a channel that is closed when the subscription has stopped
// and every handler it ran has returned (even one that outlived Shutdown's
// deadline by ignoring its context).
func (s *Subscription) Done() <-chan struct{} { return s.stopped }

// Close stops the subscription: no new messages are delivered, and Close
// blocks until in-flight handlers finish and their messages are settled, for
// at most the drain timeout (WithDrainTimeout, default 30s). Handlers still
// running then have their context cancelled and their messages handed back
// for redelivery (counted as an attempt), and Close returns
// context.DeadlineExceeded. Messages fetched ahead but not handled are
// handed back untouched. Close is idempotent: later calls wait for the
// first to finish and return its result.
//
// Do not call Close from a handler of the same subscription: it would wait
// for that handler until the drain timeout. Cancel the context given to
// Subscribe instead, which closes the subscription in the background.
func (s *Subscription) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.drainTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close with the drain bounded by ctx instead of the drain
// timeout. If ctx ends first, it cancels the handlers' context, hands their
// messages back for redelivery with the next Attempt, hands back parked dead
// letters (with an Attempt past WithMaxAttempts, so that no handler runs
// them again), and returns ctx's error. A handler that ignores its context
// may then still be running while its message is delivered again
// elsewhere; Done is closed once it returns.
func (s *Subscription) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopWatch()
		s.stopReceiving()
		drained := make(chan struct{})
		go func() { s.workers.Wait(); close(drained) }()
		cut := false
		select {
		case <-drained:
		case <-ctx.Done():
			cut = true
			s.stopErr = ctx.Err()
			s.cutOff()
		}
		s.cancelHandlers()
		if err := s.ds.Close(); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("pubsub: close subscription to %s/%s: %w", s.cfg.topic, s.cfg.group, err)
		}
		finish := func() {
			<-drained
			s.c.forget(s)
			close(s.stopped)
		}
		if cut {
			go finish() // a handler outlives the deadline
		} else {
			finish() // drained: Done is closed when Shutdown returns
		}
		close(s.shutDown)
	})
	<-s.shutDown
	return s.stopErr
}

// cutOff ends the drain at Shutdown's deadline. In this order: no worker
// starts settling any more; the deliveries whose handlers still run are
// taken from their workers and handed back (with the next Attempt: the run
// was cut off); the handlers' context is cancelled; then cutOff waits, for
// at most handBackTimeout, for the settlements already under way (and for
// parked dead letters to be handed back), before the driver releases what
// is left untouched. A handler that returns after this settles nothing.
func (s *Subscription) cutOff() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.handlerCtx), handBackTimeout)
	defer cancel()
	s.settling.shut()
	var n int
	for i := range s.slots {
		f, ok := s.slots[i].claim()
		if !ok {
			continue
		}
		n++
		s.handBack(&f, f.attempt+1, nil)
	}
	s.cancelHandlers()
	waitErr := s.settling.wait(ctx)
	s.cfg.logger.Warn("pubsub: drain cut short; messages of unfinished handlers handed back for redelivery",
		"topic", s.cfg.topic, "group", s.cfg.group, "handed_back", n, "settlements_unfinished", waitErr != nil)
}
