package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Subscription is a running member of a consumer group: Concurrency workers
// receive messages and run the handler, then settle each message with the
// broker (ack, retry after a backoff, or dead-letter).
//
// A Subscription is safe for concurrent use. Stop it with Close or Shutdown.
type Subscription struct {
	cfg    SubscribeConfig
	recv   Receiver
	dlq    Publisher
	h      Handler
	onStop func()

	stopReceiving  context.CancelFunc // ends workers' Receive calls
	receiveCtx     context.Context
	handlerCtx     context.Context
	cancelHandlers context.CancelFunc
	stopWatch      func() bool // stops the Subscribe-context watcher

	workers  sync.WaitGroup
	inFlight atomic.Int64

	stopOnce sync.Once
	shutDown chan struct{} // closed when Shutdown's work is done
	stopped  chan struct{} // closed when, besides, every handler returned
	stopErr  error
}

// StartSubscription starts the delivery loop of a subscription; transports
// call it from Subscribe once the group exists and r is ready. cfg comes from
// NewSubscribeConfig. Dead letters are published with dlq; when dlq is a
// GroupCreator, the group cfg.Group is first created on the dead-letter topic
// so that dead letters are kept (read them by subscribing to
// cfg.DeadLetterTopic with that group name). onStop, if not nil, runs once
// after the subscription stopped.
//
// The subscription shuts down, as Close does, when ctx is done; values of ctx
// are passed to handlers.
func StartSubscription(ctx context.Context, cfg SubscribeConfig, r Receiver, dlq Publisher, h Handler, onStop func()) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	if gc, ok := dlq.(GroupCreator); ok {
		if err := gc.CreateGroup(ctx, cfg.DeadLetterTopic, cfg.Group); err != nil {
			return nil, fmt.Errorf("pubsub: create dead-letter group %s/%s: %w", cfg.DeadLetterTopic, cfg.Group, err)
		}
	}
	s := &Subscription{cfg: cfg, recv: r, dlq: dlq, h: h, onStop: onStop,
		shutDown: make(chan struct{}), stopped: make(chan struct{})}
	base := context.WithoutCancel(ctx)
	s.receiveCtx, s.stopReceiving = context.WithCancel(base)
	s.handlerCtx, s.cancelHandlers = context.WithCancel(base)
	s.workers.Add(cfg.Concurrency)
	for range cfg.Concurrency {
		go s.work()
	}
	watching := make(chan struct{}) // stopWatch is set
	s.stopWatch = context.AfterFunc(ctx, func() { <-watching; _ = s.Close() })
	close(watching)
	return s, nil
}

// Stopping returns a channel that is closed when the subscription starts to
// shut down (Close, Shutdown, or the end of Subscribe's context): from then
// on it takes no new message. A handler waiting on something else can select
// on it and return an error wrapping ErrClosed to hand its message back.
func (s *Subscription) Stopping() <-chan struct{} { return s.receiveCtx.Done() }

// Done returns a channel that is closed when the subscription has stopped
// and every handler it ran has returned (even one that outlived Shutdown's
// deadline by ignoring its context).
func (s *Subscription) Done() <-chan struct{} { return s.stopped }

// Close stops the subscription: no new messages are delivered, and Close
// blocks until in-flight handlers finish and their messages are settled, for
// at most the drain timeout (WithDrainTimeout, default 30s). Handlers still
// running then have their context cancelled and their messages are handed
// back to the broker for redelivery, and Close returns
// context.DeadlineExceeded. Close is idempotent: later calls wait for the
// first to finish and return its result.
//
// Do not call Close from a handler of the same subscription: it would wait
// for that handler until the drain timeout. Cancel the context given to
// Subscribe instead, which closes the subscription in the background.
func (s *Subscription) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close with the drain bounded by ctx instead of the drain
// timeout. If ctx ends first, it cancels the handlers' context, hands their
// messages back to the broker for redelivery, and returns ctx's error. A
// handler that ignores its context may then still be running, while its
// message is delivered again elsewhere; Done is closed once it returns.
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
			n := s.inFlight.Load()
			s.cancelHandlers()
			s.stopErr = ctx.Err()
			s.cfg.Logger.Warn("pubsub: drain cut short; messages of unfinished handlers will be redelivered",
				"topic", s.cfg.Topic, "group", s.cfg.Group, "in_flight", n, "err", ctx.Err())
		}
		s.cancelHandlers()
		if err := s.recv.Close(); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("pubsub: close receiver of %s/%s: %w", s.cfg.Topic, s.cfg.Group, err)
		}
		finish := func() {
			<-drained
			if s.onStop != nil {
				s.onStop()
			}
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

// work is one worker: receive, handle, settle, until the subscription stops.
// It checks for the stop before each Receive, so that a draining
// subscription takes no new message.
func (s *Subscription) work() {
	defer s.workers.Done()
	pause := 100 * time.Millisecond
	for s.receiveCtx.Err() == nil {
		d, err := s.recv.Receive(s.receiveCtx)
		if err != nil {
			if s.receiveCtx.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			s.cfg.Logger.Error("pubsub: receive failed; retrying", "topic", s.cfg.Topic, "group", s.cfg.Group, "pause", pause, "err", err)
			select {
			case <-time.After(pause):
				pause = min(2*pause, 5*time.Second)
			case <-s.receiveCtx.Done():
				return
			}
			continue
		}
		pause = 100 * time.Millisecond
		s.inFlight.Add(1)
		s.handle(d)
		s.inFlight.Add(-1)
	}
}

// handle runs the handler on one delivery and settles it.
func (s *Subscription) handle(d Delivery) {
	ctx := s.handlerCtx
	msg := d.Message()
	attempt := msg.Attempt
	err := s.call(ctx, msg)
	switch {
	case ctx.Err() != nil:
		return // stopped without waiting: the receiver has handed the message back
	case err != nil && errors.Is(err, ErrClosed) && s.receiveCtx.Err() != nil:
		return // the handler could not take the message because it is stopping too
	}
	var serr error
	switch {
	case err == nil:
		serr = d.Ack(ctx)
	case IsPermanent(err) || attempt >= s.cfg.MaxAttempts:
		s.logFailure(msg, attempt, err)
		serr = s.deadLetter(ctx, d, attempt, err)
	default:
		s.logFailure(msg, attempt, err)
		serr = d.Retry(ctx, s.cfg.Backoff(attempt))
	}
	s.logSettle(serr, msg, attempt)
}

// logSettle logs a failure to settle a message with the broker.
func (s *Subscription) logSettle(serr error, msg *Message, attempt int) {
	if serr != nil {
		s.log(slog.LevelError, "pubsub: settle failed; the broker will redeliver", msg, attempt, serr)
	}
}

// logFailure logs a handler's failure: at Debug, or at Error with the stack
// for a panic (a bug in the handler).
func (s *Subscription) logFailure(msg *Message, attempt int, err error) {
	var pe *PanicError
	if errors.As(err, &pe) {
		s.cfg.Logger.Error("pubsub: handler panicked", "topic", s.cfg.Topic, "group", s.cfg.Group,
			"message_id", msg.ID, "attempt", attempt, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		return
	}
	s.log(slog.LevelDebug, "pubsub: handler failed", msg, attempt, err)
}

// call runs the handler, turning a panic into a *PanicError.
func (s *Subscription) call(ctx context.Context, msg *Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return s.h(ctx, msg)
}

// deadLetter publishes the delivery's message to the dead-letter topic, then
// acks it. A failed publish is tried again a few times with the backoff while
// the subscription runs; if it still fails the message is retried instead, so
// it is never dropped (its handler then runs again when it comes back).
func (s *Subscription) deadLetter(ctx context.Context, d Delivery, attempt int, cause error) error {
	msg := d.Message()
	dl := msg.deadLetter(s.cfg.Topic, s.cfg.Group, attempt, truncate(cause.Error(), MaxDeadLetterReason))
	var err error
	for try := 1; ; try++ {
		if err = s.dlq.Publish(ctx, s.cfg.DeadLetterTopic, dl); err == nil {
			s.log(slog.LevelWarn, "pubsub: message dead-lettered", msg, attempt, cause)
			return d.Ack(ctx)
		}
		if try == deadLetterTries || errors.Is(err, ErrMessageTooLarge) {
			break
		}
		select {
		case <-time.After(s.cfg.Backoff(try)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.log(slog.LevelError, "pubsub: dead-letter publish failed; will retry", msg, attempt, err)
	return d.Retry(ctx, s.cfg.Backoff(attempt))
}

// deadLetterTries is how many times deadLetter publishes before it falls
// back to retrying the message.
const deadLetterTries = 4

// MaxDeadLetterReason is the longest MetadataDeadLetterReason, in bytes;
// longer error texts are cut, ending in "...".
const MaxDeadLetterReason = 1024

// truncate cuts s to at most n bytes, on a UTF-8 boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func (s *Subscription) log(level slog.Level, text string, msg *Message, attempt int, err error) {
	s.cfg.Logger.Log(context.Background(), level, text, "topic", s.cfg.Topic, "group", s.cfg.Group,
		"message_id", msg.ID, "attempt", attempt, "dead_letter_topic", s.cfg.DeadLetterTopic, "err", err)
}
