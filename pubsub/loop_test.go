package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

func TestLoopAcksSuccess(t *testing.T) {
	f := newFakeBroker()
	f.start(t, func(context.Context, *pubsub.Message) error { return nil })
	f.deliver("m1", 1)
	assert.Equal(t, []settlement{{id: "m1", kind: "ack"}}, f.waitSettled(t, 1))
}

func TestLoopRetriesWithBackoffAndNextAttempt(t *testing.T) {
	f := newFakeBroker()
	f.start(t, func(context.Context, *pubsub.Message) error { return errors.New("fail") },
		pubsub.WithBackoff(time.Second, 8*time.Second), pubsub.WithMaxAttempts(5))
	f.deliver("m1", 1)
	f.deliver("m1", 3)
	got := f.waitSettled(t, 2)
	require.Len(t, got, 2)
	assert.Equal(t, "retry", got[0].kind)
	assert.Equal(t, 2, got[0].attempt)
	assert.True(t, got[0].delay >= 500*time.Millisecond && got[0].delay <= time.Second, "attempt 1 delay %v", got[0].delay)
	assert.Equal(t, 4, got[1].attempt)
	assert.True(t, got[1].delay >= 2*time.Second && got[1].delay <= 4*time.Second, "attempt 3 delay %v", got[1].delay)
}

func TestLoopDeadLettersAtMaxAttempts(t *testing.T) {
	f := newFakeBroker()
	f.start(t, func(_ context.Context, m *pubsub.Message) error {
		m.Payload = []byte("handler scribbled") // must not reach the dead letter
		m.Metadata["app"] = "scribbled"
		return errors.New("still failing")
	}, pubsub.WithMaxAttempts(3))
	f.deliver("m1", 3)
	got := f.waitSettled(t, 1)
	require.Len(t, got, 1)
	require.Equal(t, "deadletter", got[0].kind)
	dl := got[0].dl
	assert.Equal(t, "m1", dl.ID)
	assert.Equal(t, []byte("m1"), dl.Payload)
	assert.Equal(t, 0, dl.Attempt)
	when, err := time.Parse(time.RFC3339Nano, dl.Metadata[pubsub.MetadataDeadLetterTime])
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), when, 5*time.Second)
	delete(dl.Metadata, pubsub.MetadataDeadLetterTime)
	assert.Equal(t, map[string]string{
		"app":                           "v",
		pubsub.MetadataDeadLetterReason: "still failing",
		pubsub.MetadataOriginalTopic:    "orders",
		pubsub.MetadataGroup:            "billing",
		pubsub.MetadataAttempts:         "3",
	}, dl.Metadata)
}

func TestLoopPermanentSkipsRetries(t *testing.T) {
	f := newFakeBroker()
	f.start(t, func(context.Context, *pubsub.Message) error {
		return fmt.Errorf("wrapped: %w", pubsub.Permanent(errors.New("malformed")))
	})
	f.deliver("m1", 1)
	got := f.waitSettled(t, 1)
	require.Equal(t, "deadletter", got[0].kind)
	assert.Equal(t, "wrapped: malformed", got[0].dl.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "1", got[0].dl.Metadata[pubsub.MetadataAttempts])
}

// An Attempt past the maximum (earlier runs cut off by crashes) is
// dead-lettered without running the handler.
func TestLoopNeverRunsPastMaxAttempts(t *testing.T) {
	f := newFakeBroker()
	var calls atomic.Int32
	f.start(t, func(context.Context, *pubsub.Message) error { calls.Add(1); return nil }, pubsub.WithMaxAttempts(5))
	f.deliver("m1", 6)
	got := f.waitSettled(t, 1)
	require.Equal(t, "deadletter", got[0].kind)
	assert.Equal(t, "5", got[0].dl.Metadata[pubsub.MetadataAttempts])
	assert.Contains(t, got[0].dl.Metadata[pubsub.MetadataDeadLetterReason], "attempt 6 is past the maximum of 5")
	assert.Zero(t, calls.Load())
}

// A dead letter that cannot be stored parks the message: storing is tried
// again with backoff, the handler never runs again, and once storing works
// the message is dead-lettered. The observer sees Parked, then DeadLettered.
func TestLoopParksWhenDeadLetterFails(t *testing.T) {
	f := newFakeBroker()
	f.deadLetterErr = errors.New("dead-letter queue full")
	var calls atomic.Int32
	var mu sync.Mutex
	var outcomes []pubsub.Outcome
	obs := pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, st pubsub.Settlement) {
		mu.Lock()
		outcomes = append(outcomes, st.Outcome)
		mu.Unlock()
	}})
	f.start(t, func(context.Context, *pubsub.Message) error {
		calls.Add(1)
		return pubsub.Permanent(errors.New("bad"))
	}, pubsub.WithBackoff(time.Millisecond, 2*time.Millisecond), obs)
	f.deliver("m1", 1)
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.deadLetters >= 5
	}, 5*time.Second, time.Millisecond, "storing is tried again")
	assert.Empty(t, f.snapshot(), "nothing settled while parked")
	f.mu.Lock()
	f.deadLetterErr = nil
	f.mu.Unlock()
	got := f.waitSettled(t, 1)
	assert.Equal(t, "deadletter", got[0].kind)
	assert.Equal(t, int32(1), calls.Load(), "the handler ran once")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(outcomes) == 2 }, time.Second, time.Millisecond)
	mu.Lock()
	assert.Equal(t, []pubsub.Outcome{pubsub.OutcomeParked, pubsub.OutcomeDeadLettered}, outcomes)
	mu.Unlock()
}

// At Shutdown's deadline a parked message is handed back with an Attempt
// past the maximum, so that the next member dead-letters it at once.
func TestLoopHandsBackParkedPastMax(t *testing.T) {
	f := newFakeBroker()
	f.deadLetterErr = errors.New("down")
	_, sub := f.start(t, func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New("bad"))
	}, pubsub.WithMaxAttempts(5), pubsub.WithBackoff(time.Millisecond, time.Millisecond))
	f.deliver("m1", 1)
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.deadLetters >= 2 }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, sub.Shutdown(ctx), context.DeadlineExceeded)
	got := f.snapshot()
	require.Len(t, got, 1)
	assert.Equal(t, settlement{id: "m1", kind: "retry", attempt: 6}, got[0])
}

func TestLoopCutsLongReasons(t *testing.T) {
	f := newFakeBroker()
	long := strings.Repeat("é", 1000) // 2000 bytes
	f.start(t, func(context.Context, *pubsub.Message) error { return pubsub.Permanent(errors.New(long)) })
	f.deliver("m1", 1)
	got := f.waitSettled(t, 1)
	reason := got[0].dl.Metadata[pubsub.MetadataDeadLetterReason]
	assert.Len(t, reason, pubsub.MaxDeadLetterReason-1, "cut on a rune boundary: 1020 bytes of é and ...")
	assert.True(t, utf8.ValidString(reason))
	assert.True(t, strings.HasSuffix(reason, "..."))
}

// A handler that returns ErrClosed because its subscription is stopping has
// its message released untouched, not retried.
func TestLoopReleasesWhenHandlerSaysClosedWhileStopping(t *testing.T) {
	f := newFakeBroker()
	running := make(chan struct{})
	stopping := make(chan (<-chan struct{}), 1)
	_, sub := f.start(t, func(ctx context.Context, _ *pubsub.Message) error {
		close(running)
		<-<-stopping
		return fmt.Errorf("consumer gone: %w", pubsub.ErrClosed)
	})
	stopping <- sub.Stopping()
	f.deliver("m1", 2)
	<-running
	require.NoError(t, sub.Close())
	assert.Equal(t, []settlement{{id: "m1", kind: "release"}}, f.snapshot())
	f.mu.Lock()
	assert.Equal(t, 1, f.subsClosed)
	f.mu.Unlock()
}

// A handler still running at Shutdown's deadline has its message handed
// back with the next Attempt; its late nil return acks nothing; Done waits
// for it.
func TestLoopDeadlineHandsBackRunningHandler(t *testing.T) {
	f := newFakeBroker()
	started, release := make(chan struct{}), make(chan struct{})
	_, sub := f.start(t, func(context.Context, *pubsub.Message) error {
		close(started)
		<-release // ignores its context
		return nil
	})
	f.deliver("m1", 2)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, sub.Shutdown(ctx), context.DeadlineExceeded)
	require.ErrorIs(t, sub.Close(), context.DeadlineExceeded, "later calls return the first result at once")
	assert.Equal(t, []settlement{{id: "m1", kind: "retry", attempt: 3}}, f.snapshot())
	select {
	case <-sub.Done():
		t.Fatal("Done closed while a handler still runs")
	default:
	}
	close(release)
	select {
	case <-sub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the handler returned")
	}
	assert.Len(t, f.snapshot(), 1, "the late return settles nothing")
}

func TestLoopRecoversPanics(t *testing.T) {
	f := newFakeBroker()
	f.start(t, func(context.Context, *pubsub.Message) error { panic("boom") }, pubsub.WithMaxAttempts(1))
	f.deliver("m1", 1)
	got := f.waitSettled(t, 1)
	require.Equal(t, "deadletter", got[0].kind, "MaxAttempts 1: straight to the dead letter")
	assert.Equal(t, "pubsub: handler panicked: boom", got[0].dl.Metadata[pubsub.MetadataDeadLetterReason])
}

func TestLoopRecoversMiddlewarePanics(t *testing.T) {
	f := newFakeBroker()
	boom := pubsub.Middleware(func(pubsub.Handler) pubsub.Handler {
		return func(context.Context, *pubsub.Message) error { panic("middleware") }
	})
	f.start(t, func(context.Context, *pubsub.Message) error { return nil }, pubsub.WithMiddleware(boom))
	f.deliver("m1", 1)
	got := f.waitSettled(t, 1)
	assert.Equal(t, "retry", got[0].kind)
}

func TestLoopSurvivesReceiveErrors(t *testing.T) {
	f := newFakeBroker()
	f.receiveErrs = []error{errors.New("connection reset")}
	f.start(t, func(context.Context, *pubsub.Message) error { return nil })
	f.deliver("m1", 1)
	assert.Equal(t, []settlement{{id: "m1", kind: "ack"}}, f.waitSettled(t, 1))
}

func TestLoopStopsOnErrClosed(t *testing.T) {
	f := newFakeBroker()
	f.receiveErrs = []error{pubsub.ErrClosed}
	_, sub := f.start(t, func(context.Context, *pubsub.Message) error { return nil })
	select {
	case <-sub.Done():
		t.Fatal("Done before Close")
	default:
	}
	require.NoError(t, sub.Close())
	assert.Empty(t, f.snapshot(), "the only worker stopped at ErrClosed")
	f.mu.Lock()
	assert.Equal(t, 1, f.subsClosed)
	f.mu.Unlock()
}

func TestLoopSettleFailureIsObserved(t *testing.T) {
	f := newFakeBroker()
	f.ackErr = errors.New("channel closed")
	got := make(chan pubsub.Settlement, 1)
	c := f.client(t, pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, st pubsub.Settlement) { got <- st }}))
	_, err := c.Subscribe(context.Background(), "orders", "billing", func(context.Context, *pubsub.Message) error { return nil })
	require.NoError(t, err)
	f.deliver("m1", 1)
	select {
	case st := <-got:
		assert.Equal(t, pubsub.OutcomeSettleFailed, st.Outcome)
		assert.EqualError(t, st.Err, "channel closed")
		assert.Equal(t, "m1", st.Message.ID)
		assert.Equal(t, "orders", st.Topic)
		assert.Equal(t, "billing", st.Group)
		assert.NoError(t, st.Cause)
	case <-time.After(5 * time.Second):
		t.Fatal("no outcome")
	}
}

func TestLoopConcurrencyBound(t *testing.T) {
	f := newFakeBroker()
	var mu sync.Mutex
	running, peak := 0, 0
	release := make(chan struct{})
	three := make(chan struct{})
	var once sync.Once
	f.start(t, func(context.Context, *pubsub.Message) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		if running == 3 {
			once.Do(func() { close(three) })
		}
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}, pubsub.WithConcurrency(3))
	for i := range 6 {
		f.deliver(string(rune('a'+i)), 1)
	}
	<-three
	assert.Empty(t, f.snapshot())
	close(release)
	f.waitSettled(t, 6)
	assert.Equal(t, 3, peak)
}

// WithDeadLetter publishes the dead letter to a topic of one's own, then
// acks.
func TestLoopDeadLetterToTopic(t *testing.T) {
	f := newFakeBroker()
	f.start(t, func(context.Context, *pubsub.Message) error { return pubsub.Permanent(errors.New("no")) },
		pubsub.WithDeadLetter("graveyard"))
	f.deliver("m1", 1)
	assert.Equal(t, []settlement{{id: "m1", kind: "ack"}}, f.waitSettled(t, 1))
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.sent["graveyard"], 1)
	assert.Equal(t, "no", f.sent["graveyard"][0].Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, 0, f.deadLetters, "not stored in the group's own dead letters")
}
