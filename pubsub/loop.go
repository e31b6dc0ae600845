package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// MaxDeadLetterReason is the longest MetadataDeadLetterReason, in bytes;
// longer error texts are cut, ending in "...".
const MaxDeadLetterReason = 1024

// handBackTimeout bounds a hand-back made after Shutdown's deadline.
const handBackTimeout = 5 * time.Second

// work is one worker: receive, handle, settle, until the subscription stops.
// It checks for the stop before each Receive, so that a draining
// subscription takes no new message.
func (s *Subscription) work(sl *slot) {
	defer s.workers.Done()
	pause := 100 * time.Millisecond
	for s.receiveCtx.Err() == nil {
		d, err := s.ds.Receive(s.receiveCtx)
		if err != nil {
			if s.receiveCtx.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			s.cfg.logger.Error("pubsub: receive failed; retrying", "topic", s.cfg.topic, "group", s.cfg.group, "pause", pause, "err", err)
			select {
			case <-time.After(pause):
				pause = min(2*pause, 5*time.Second)
			case <-s.receiveCtx.Done():
				return
			}
			continue
		}
		pause = 100 * time.Millisecond
		s.handle(sl, d)
	}
}

// handle runs the handler on one delivery and settles it. A worker settles
// only while it holds the settling gate: once Shutdown's deadline passed,
// the deliveries it did not settle are handed back by cutOff (whose
// handlers ran) or by the driver's Close (untouched).
func (s *Subscription) handle(sl *slot, d driver.Delivery) {
	msg := (*Message)(d.Message())
	if msg.Metadata == nil {
		msg.Metadata = map[string]string{}
	}
	f := inflight{d: d, msg: msg, attempt: msg.Attempt, ctx: s.handlerCtx}
	if s.receiveCtx.Err() != nil {
		// Taken while the subscription started to stop: hand it back.
		if s.settling.enter() {
			s.settle(&f, Settlement{Outcome: OutcomeReleased}, d.Release(s.settleCtx))
			s.settling.leave()
		}
		return
	}
	if msg.Attempt > s.cfg.maxAttempts {
		// Earlier runs were cut off (a crash, a deadline) or its dead
		// letter was parked when a member stopped: no handler runs it again.
		if s.settling.enter() {
			s.deadLetter(&f, msg.Attempt-1, fmt.Errorf("pubsub: attempt %d is past the maximum of %d (earlier attempts were cut off or their dead letter was not stored)", msg.Attempt, s.cfg.maxAttempts), 0)
			s.settling.leave()
		}
		return
	}
	for _, o := range s.cfg.observers {
		if o.OnReceive != nil {
			f.ctx = o.OnReceive(f.ctx, Delivery{Topic: s.cfg.topic, Group: s.cfg.group, Message: msg})
		}
	}
	sl.begin(f)
	if s.handlerCtx.Err() != nil {
		// Shutdown's deadline passed since the message arrived, maybe
		// before cutOff could see this slot: the handler must not start;
		// the driver's Close hands the message back untouched.
		if _, ok := sl.claim(); ok {
			s.observe(&f, Settlement{Outcome: OutcomeReleased})
		}
		return
	}
	var start time.Time
	if len(s.cfg.observers) > 0 { // only observers are told the duration
		start = time.Now()
	}
	err := s.call(f.ctx, msg)
	var took time.Duration
	if !start.IsZero() {
		took = time.Since(start)
	}
	if !s.settling.enter() {
		return // Shutdown's deadline passed: cutOff takes the delivery from the slot
	}
	defer s.settling.leave()
	if _, ok := sl.claim(); !ok {
		return // Shutdown's deadline passed: cutOff handed the message back
	}
	attempt := f.attempt
	switch {
	case err == nil:
		s.settle(&f, Settlement{Outcome: OutcomeAcked, Duration: took}, d.Ack(s.settleCtx))
	case errors.Is(err, ErrClosed) && s.receiveCtx.Err() != nil:
		// The handler could not take the message because it stops too.
		s.settle(&f, Settlement{Outcome: OutcomeReleased, Duration: took}, d.Release(s.settleCtx))
	case IsPermanent(err) || attempt >= s.cfg.maxAttempts:
		s.deadLetter(&f, attempt, err, took)
	default:
		s.logFailure(msg, err)
		delay := s.cfg.backoff(attempt)
		s.settle(&f, Settlement{Outcome: OutcomeRetried, Delay: delay, Cause: err, Duration: took}, d.Retry(s.settleCtx, delay, attempt+1))
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

// settle reports the outcome of a settlement to the observers, or
// OutcomeSettleFailed when the broker refused it (serr).
func (s *Subscription) settle(f *inflight, st Settlement, serr error) {
	if serr != nil {
		st.Outcome, st.Err = OutcomeSettleFailed, serr
		s.log(slog.LevelError, "pubsub: settle failed; the broker will redeliver", f.msg, serr)
	}
	s.observe(f, st)
}

func (s *Subscription) observe(f *inflight, st Settlement) {
	if len(s.cfg.observers) == 0 {
		return
	}
	st.Topic, st.Group, st.Message = s.cfg.topic, s.cfg.group, f.msg
	for _, o := range s.cfg.observers {
		if o.OnSettle != nil {
			o.OnSettle(f.ctx, st)
		}
	}
}

// handBack hands f's message back to be redelivered at once with the given
// Attempt, after Shutdown's deadline.
func (s *Subscription) handBack(f *inflight, attempt int, cause error) {
	ctx, cancel := context.WithTimeout(s.settleCtx, handBackTimeout)
	defer cancel()
	s.settle(f, Settlement{Outcome: OutcomeRetried, Cause: cause}, f.d.Retry(ctx, 0, attempt))
}

// deadLetter stores f's message in its group's dead letters (or publishes
// it to WithDeadLetter's topic) and acks it. If that fails, the message is
// parked: this worker keeps it and tries again with backoff, never running
// the handler again, until it is stored or Shutdown's deadline passes, when
// it is handed back with an Attempt past the maximum so that the next
// member dead-letters it at once. The caller holds the settling gate, so
// that cutOff waits for the hand-back.
func (s *Subscription) deadLetter(f *inflight, attempts int, cause error, took time.Duration) {
	dl := deadLetterOf(f.d, s.cfg.topic, s.cfg.group, attempts, cause)
	st := Settlement{Outcome: OutcomeDeadLettered, Cause: cause, Duration: took}
	err := s.storeDeadLetter(f, dl)
	if err == nil {
		s.logDeadLetter(f.msg, attempts, cause)
		s.observe(f, st)
		return
	}
	if s.handlerCtx.Err() != nil {
		s.handBack(f, max(f.attempt+1, s.cfg.maxAttempts+1), cause)
		return
	}
	s.observe(f, Settlement{Outcome: OutcomeParked, Cause: cause, Err: err, Duration: took})
	for try := 1; ; try++ {
		delay := s.cfg.backoff(try)
		s.log(slog.LevelError, "pubsub: dead letter not stored; message parked, trying again", f.msg, err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-s.handlerCtx.Done():
			s.handBack(f, max(f.attempt+1, s.cfg.maxAttempts+1), cause)
			return
		}
		if err = s.storeDeadLetter(f, dl); err == nil {
			s.logDeadLetter(f.msg, attempts, cause)
			s.observe(f, st)
			return
		}
	}
}

// storeDeadLetter stores dl for f: in the group's dead letters, or
// published to WithDeadLetter's topic (in the delivery's context, so that a
// trace continues) and then acked.
func (s *Subscription) storeDeadLetter(f *inflight, dl *Message) error {
	if s.cfg.deadLetterTopic == "" {
		return f.d.DeadLetter(s.settleCtx, (*driver.Message)(dl))
	}
	if err := s.c.Publish(context.WithoutCancel(f.ctx), s.cfg.deadLetterTopic, dl); err != nil {
		return err
	}
	return f.d.Ack(s.settleCtx)
}

// deadLetterOf returns the dead letter of d's message: a fresh copy of it,
// untouched by the handler, with the reason, time, origin and attempt count
// in its metadata and Attempt 0.
func deadLetterOf(d driver.Delivery, topic, group string, attempts int, cause error) *Message {
	m := (*Message)(d.Message())
	md := make(map[string]string, len(m.Metadata)+5)
	for k, v := range m.Metadata {
		md[k] = v
	}
	md[MetadataDeadLetterReason] = truncate(cause.Error(), MaxDeadLetterReason)
	md[MetadataDeadLetterTime] = time.Now().UTC().Format(time.RFC3339Nano)
	md[MetadataOriginalTopic] = topic
	md[MetadataGroup] = group
	md[MetadataAttempts] = strconv.Itoa(attempts)
	m.Metadata, m.Attempt = md, 0
	return m
}

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

// logFailure logs a handler failure that will be retried: at Debug, or at
// Warn for a panic (its stack is logged once, with the dead letter).
func (s *Subscription) logFailure(msg *Message, err error) {
	var pe *PanicError
	if errors.As(err, &pe) {
		s.log(slog.LevelWarn, "pubsub: handler panicked; will retry", msg, err)
		return
	}
	s.log(slog.LevelDebug, "pubsub: handler failed; will retry", msg, err)
}

// logDeadLetter logs a stored dead letter: at Warn, or at Error with the
// stack when the handler panicked.
func (s *Subscription) logDeadLetter(msg *Message, attempts int, cause error) {
	var pe *PanicError
	if errors.As(cause, &pe) {
		s.log(slog.LevelError, "pubsub: message dead-lettered after a panic", msg, cause, "attempts", attempts, "stack", string(pe.Stack))
		return
	}
	s.log(slog.LevelWarn, "pubsub: message dead-lettered", msg, cause, "attempts", attempts)
}

func (s *Subscription) log(level slog.Level, text string, msg *Message, err error, more ...any) {
	l := s.cfg.logger
	if !l.Enabled(context.Background(), level) {
		return
	}
	args := append([]any{"topic", s.cfg.topic, "group", s.cfg.group, "message_id", msg.ID, "attempt", msg.Attempt, "err", err}, more...)
	l.Log(context.Background(), level, text, args...)
}
