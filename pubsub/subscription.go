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
	stopped  chan struct{} // closed when shutdown finished
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
	s := &Subscription{cfg: cfg, recv: r, dlq: dlq, h: h, onStop: onStop, stopped: make(chan struct{})}
	base := context.WithoutCancel(ctx)
	s.receiveCtx, s.stopReceiving = context.WithCancel(base)
	s.handlerCtx, s.cancelHandlers = context.WithCancel(base)
	s.workers.Add(cfg.Concurrency)
	for range cfg.Concurrency {
		go s.work()
	}
	s.stopWatch = context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}

// Done returns a channel that is closed when the subscription has stopped.
func (s *Subscription) Done() <-chan struct{} { return s.stopped }

// Close stops the subscription: no new messages are delivered, and Close
// blocks until in-flight handlers finish and their messages are settled, for
// at most the drain timeout (WithDrainTimeout, default 30s). Handlers still
// running then have their context cancelled and their messages are left to be
// redelivered; Close then returns an error saying so. Close is idempotent:
// later calls wait for the first to finish and return its result.
func (s *Subscription) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close with the drain bounded by ctx instead of the drain
// timeout. If ctx ends first, it cancels the handlers' context, hands their
// messages back to the broker for redelivery, and returns ctx's error.
func (s *Subscription) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopWatch()
		s.stopReceiving()
		drained := make(chan struct{})
		go func() { s.workers.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-ctx.Done():
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
		if s.onStop != nil {
			s.onStop()
		}
		close(s.stopped)
	})
	<-s.stopped
	return s.stopErr
}

// work is one worker: receive, handle, settle, until the subscription stops.
func (s *Subscription) work() {
	defer s.workers.Done()
	pause := 100 * time.Millisecond
	for {
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
	if ctx.Err() != nil {
		return // stopped without waiting: the receiver has handed the message back
	}
	var serr error
	switch {
	case err == nil:
		serr = d.Ack(ctx)
	case IsPermanent(err) || attempt >= s.cfg.MaxAttempts:
		serr = s.deadLetter(ctx, d, attempt, err)
	default:
		s.log(slog.LevelDebug, "pubsub: handler failed; will retry", msg, attempt, err)
		serr = d.Retry(ctx, s.cfg.Backoff(attempt))
	}
	if serr != nil {
		s.log(slog.LevelError, "pubsub: settle failed; the broker will redeliver", msg, attempt, serr)
	}
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
// acks it. If the publish fails the message is retried instead, so it is
// never dropped.
func (s *Subscription) deadLetter(ctx context.Context, d Delivery, attempt int, cause error) error {
	msg := d.Message()
	dl := msg.deadLetter(s.cfg.Topic, s.cfg.Group, attempt, cause.Error())
	if err := s.dlq.Publish(ctx, s.cfg.DeadLetterTopic, dl); err != nil {
		s.log(slog.LevelError, "pubsub: dead-letter publish failed; will retry", msg, attempt, err)
		return d.Retry(ctx, s.cfg.Backoff(attempt))
	}
	s.log(slog.LevelWarn, "pubsub: message dead-lettered", msg, attempt, cause)
	return d.Ack(ctx)
}

func (s *Subscription) log(level slog.Level, text string, msg *Message, attempt int, err error) {
	s.cfg.Logger.Log(context.Background(), level, text, "topic", s.cfg.Topic, "group", s.cfg.Group,
		"message_id", msg.ID, "attempt", attempt, "dead_letter_topic", s.cfg.DeadLetterTopic, "err", err)
}
