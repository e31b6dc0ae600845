package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// The tests in this file drive the delivery loop through a scripted driver,
// to check exactly how it settles each message with the broker.

type settlement struct {
	id    string
	ack   bool
	delay time.Duration // for a retry
}

type fakeDriver struct {
	mu          sync.Mutex
	queue       chan *fakeDelivery
	settled     []settlement
	receiveErrs []error // returned by Receive before any delivery
	closed      bool
	published   []*pubsub.Message
	publishErr  error
	publishes   int // calls, failed ones included
	groups      []string
	settledCh   chan struct{}
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{queue: make(chan *fakeDelivery, 100), settledCh: make(chan struct{}, 100)}
}

func (f *fakeDriver) deliver(id string, attempt int) {
	f.queue <- &fakeDelivery{f: f, msg: &pubsub.Message{ID: id, Attempt: attempt, Payload: []byte(id)}}
}

func (f *fakeDriver) Receive(ctx context.Context) (pubsub.Delivery, error) {
	f.mu.Lock()
	if len(f.receiveErrs) > 0 {
		err := f.receiveErrs[0]
		f.receiveErrs = f.receiveErrs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	select {
	case d := <-f.queue:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeDriver) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeDriver) Publish(_ context.Context, topic string, msgs ...*pubsub.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishes++
	if f.publishErr != nil {
		return f.publishErr
	}
	f.published = append(f.published, msgs...)
	return nil
}

func (f *fakeDriver) CreateGroup(_ context.Context, topic, group string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups = append(f.groups, topic+"/"+group)
	return nil
}

func (f *fakeDriver) record(s settlement) error {
	f.mu.Lock()
	f.settled = append(f.settled, s)
	f.mu.Unlock()
	f.settledCh <- struct{}{}
	return nil
}

func (f *fakeDriver) waitSettled(t *testing.T, n int) []settlement {
	t.Helper()
	for range n {
		select {
		case <-f.settledCh:
		case <-time.After(5 * time.Second):
			t.Fatalf("waited for %d settlements", n)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]settlement(nil), f.settled...)
}

type fakeDelivery struct {
	f   *fakeDriver
	msg *pubsub.Message
}

func (d *fakeDelivery) Message() *pubsub.Message { return d.msg.Clone() }
func (d *fakeDelivery) Ack(context.Context) error {
	return d.f.record(settlement{id: d.msg.ID, ack: true})
}
func (d *fakeDelivery) Retry(_ context.Context, delay time.Duration) error {
	return d.f.record(settlement{id: d.msg.ID, delay: delay})
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func start(t *testing.T, f *fakeDriver, h pubsub.Handler, opts ...pubsub.SubscribeOption) *pubsub.Subscription {
	t.Helper()
	opts = append([]pubsub.SubscribeOption{pubsub.WithLogger(quietLog), pubsub.WithConcurrency(1)}, opts...)
	cfg, err := pubsub.NewSubscribeConfig("orders", "billing", opts...)
	require.NoError(t, err)
	sub, err := pubsub.StartSubscription(context.Background(), cfg, f, f, h, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func TestLoopAcksSuccess(t *testing.T) {
	f := newFakeDriver()
	start(t, f, func(context.Context, *pubsub.Message) error { return nil })
	f.deliver("m1", 1)
	assert.Equal(t, []settlement{{id: "m1", ack: true}}, f.waitSettled(t, 1))
	assert.Equal(t, []string{"orders.dlq/billing"}, f.groups, "dead-letter group created up front")
}

func TestLoopRetriesWithBackoff(t *testing.T) {
	f := newFakeDriver()
	start(t, f, func(context.Context, *pubsub.Message) error { return errors.New("fail") },
		pubsub.WithBackoff(time.Second, 8*time.Second), pubsub.WithMaxAttempts(5))
	f.deliver("m1", 1)
	f.deliver("m1", 3)
	got := f.waitSettled(t, 2)
	require.Len(t, got, 2)
	assert.False(t, got[0].ack)
	assert.True(t, got[0].delay >= 500*time.Millisecond && got[0].delay <= time.Second, "attempt 1 delay %v", got[0].delay)
	assert.True(t, got[1].delay >= 2*time.Second && got[1].delay <= 4*time.Second, "attempt 3 delay %v", got[1].delay)
	assert.Empty(t, f.published)
}

func TestLoopDeadLettersAtMaxAttempts(t *testing.T) {
	f := newFakeDriver()
	start(t, f, func(_ context.Context, m *pubsub.Message) error {
		m.Payload = []byte("handler scribbled") // must not reach the dead letter
		return errors.New("still failing")
	}, pubsub.WithMaxAttempts(3))
	f.deliver("m1", 3)
	assert.Equal(t, []settlement{{id: "m1", ack: true}}, f.waitSettled(t, 1))
	require.Len(t, f.published, 1)
	dl := f.published[0]
	assert.Equal(t, "m1", dl.ID)
	assert.Equal(t, []byte("m1"), dl.Payload)
	assert.Equal(t, map[string]string{
		pubsub.MetadataDeadLetterReason: "still failing",
		pubsub.MetadataOriginalTopic:    "orders",
		pubsub.MetadataGroup:            "billing",
		pubsub.MetadataAttempts:         "3",
	}, dl.Metadata)
}

func TestLoopPermanentSkipsRetries(t *testing.T) {
	f := newFakeDriver()
	start(t, f, func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New("malformed"))
	})
	f.deliver("m1", 1)
	assert.Equal(t, []settlement{{id: "m1", ack: true}}, f.waitSettled(t, 1))
	require.Len(t, f.published, 1)
	assert.Equal(t, "malformed", f.published[0].Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "1", f.published[0].Metadata[pubsub.MetadataAttempts])
}

func TestLoopRetriesWhenDeadLetterPublishFails(t *testing.T) {
	f := newFakeDriver()
	f.publishErr = errors.New("broker down")
	start(t, f, func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New("bad"))
	}, pubsub.WithBackoff(time.Second, time.Second))
	f.deliver("m1", 1)
	got := f.waitSettled(t, 1)
	require.Len(t, got, 1)
	assert.False(t, got[0].ack, "not acked: the dead letter was not accepted")
	assert.GreaterOrEqual(t, got[0].delay, 500*time.Millisecond)
	f.mu.Lock()
	assert.Equal(t, 4, f.publishes, "the dead letter is tried 4 times before the message is retried")
	f.mu.Unlock()
}

func TestLoopCutsLongReasons(t *testing.T) {
	f := newFakeDriver()
	long := strings.Repeat("é", 1000) // 2000 bytes
	start(t, f, func(context.Context, *pubsub.Message) error { return pubsub.Permanent(errors.New(long)) })
	f.deliver("m1", 1)
	f.waitSettled(t, 1)
	require.Len(t, f.published, 1)
	reason := f.published[0].Metadata[pubsub.MetadataDeadLetterReason]
	assert.LessOrEqual(t, len(reason), pubsub.MaxDeadLetterReason)
	assert.True(t, utf8.ValidString(reason))
	assert.True(t, strings.HasSuffix(reason, "..."))
}

func TestLoopHandsBackWhenHandlerSaysClosedWhileStopping(t *testing.T) {
	f := newFakeDriver()
	started := make(chan struct{})
	sub := start(t, f, func(ctx context.Context, _ *pubsub.Message) error {
		close(started)
		time.Sleep(50 * time.Millisecond) // the subscription starts stopping meanwhile
		return fmt.Errorf("consumer gone: %w", pubsub.ErrClosed)
	})
	f.deliver("m1", 1)
	<-started
	require.NoError(t, sub.Close())
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Empty(t, f.settled, "neither retried nor dead-lettered: handed back by the receiver")
	assert.True(t, f.closed)
}

func TestDoneWaitsForHandlerPastDeadline(t *testing.T) {
	f := newFakeDriver()
	started, release := make(chan struct{}), make(chan struct{})
	sub := start(t, f, func(context.Context, *pubsub.Message) error {
		close(started)
		<-release // ignores its context
		return nil
	})
	f.deliver("m1", 1)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, sub.Shutdown(ctx), context.DeadlineExceeded)
	require.ErrorIs(t, sub.Close(), context.DeadlineExceeded, "later calls return the first result at once")
	select {
	case <-sub.Done():
		t.Fatal("Done closed while a handler still runs")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-sub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the handler returned")
	}
}

func TestBackoffDoesNotOverflow(t *testing.T) {
	c, err := pubsub.NewSubscribeConfig("t", "g", pubsub.WithBackoff(time.Second, time.Duration(math.MaxInt64)))
	require.NoError(t, err)
	for attempt := 1; attempt <= 100; attempt++ {
		require.Positive(t, c.Backoff(attempt), "attempt %d", attempt)
	}
}

func TestLoopRecoversPanics(t *testing.T) {
	f := newFakeDriver()
	start(t, f, func(context.Context, *pubsub.Message) error { panic("boom") },
		pubsub.WithMaxAttempts(1), pubsub.WithLogger(quietLog))
	f.deliver("m1", 1)
	got := f.waitSettled(t, 1)
	assert.Equal(t, []settlement{{id: "m1", ack: true}}, got, "MaxAttempts 1: straight to the dead letter")
	require.Len(t, f.published, 1)
	assert.Equal(t, "pubsub: handler panicked: boom", f.published[0].Metadata[pubsub.MetadataDeadLetterReason])
}

func TestLoopSurvivesReceiveErrors(t *testing.T) {
	f := newFakeDriver()
	f.receiveErrs = []error{errors.New("connection reset")}
	start(t, f, func(context.Context, *pubsub.Message) error { return nil })
	f.deliver("m1", 1)
	assert.Equal(t, []settlement{{id: "m1", ack: true}}, f.waitSettled(t, 1))
}

func TestLoopStopsOnErrClosed(t *testing.T) {
	f := newFakeDriver()
	f.receiveErrs = []error{pubsub.ErrClosed}
	sub := start(t, f, func(context.Context, *pubsub.Message) error { return nil })
	f.deliver("m1", 1)
	time.Sleep(100 * time.Millisecond)
	f.mu.Lock()
	assert.Empty(t, f.settled, "the only worker stopped at ErrClosed")
	f.mu.Unlock()
	require.NoError(t, sub.Close())
	f.mu.Lock()
	assert.True(t, f.closed)
	f.mu.Unlock()
}

func TestShutdownDeadlineLeavesMessageUnsettled(t *testing.T) {
	f := newFakeDriver()
	started := make(chan struct{})
	sub := start(t, f, func(ctx context.Context, _ *pubsub.Message) error {
		close(started)
		<-ctx.Done()
		return nil // even a nil return after the deadline must not ack
	})
	f.deliver("m1", 1)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, sub.Shutdown(ctx), context.DeadlineExceeded)
	time.Sleep(50 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Empty(t, f.settled)
	assert.True(t, f.closed, "receiver closed so the broker redelivers")
}

func TestConcurrencyBound(t *testing.T) {
	f := newFakeDriver()
	var mu sync.Mutex
	running, peak := 0, 0
	release := make(chan struct{})
	start(t, f, func(context.Context, *pubsub.Message) error {
		mu.Lock()
		running++
		peak = max(peak, running)
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
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	assert.Equal(t, 3, running, "three handlers at once")
	mu.Unlock()
	close(release)
	f.waitSettled(t, 6)
	assert.Equal(t, 3, peak)
}

func TestCheckBatch(t *testing.T) {
	ok := &pubsub.Message{ID: "1", Payload: []byte("12345")}
	assert.NoError(t, pubsub.CheckBatch("x", "t", []*pubsub.Message{ok}, 6, nil))
	assert.NoError(t, pubsub.CheckBatch("x", "t", []*pubsub.Message{ok}, 0, nil), "0: no limit")
	err := pubsub.CheckBatch("x", "t", []*pubsub.Message{ok, nil}, 0, nil)
	assert.EqualError(t, err, "x: message 2 of 2 to t is nil: pubsub: invalid message")
	assert.ErrorIs(t, err, pubsub.ErrInvalidMessage)
	err = pubsub.CheckBatch("x", "t", []*pubsub.Message{ok}, 5, nil)
	assert.EqualError(t, err, "x: message 1 of 1 to t is 6 bytes, over the limit of 5 (max_message_bytes): pubsub: message too large")
	err = pubsub.CheckBatch("x", "t", []*pubsub.Message{ok}, 0, func(*pubsub.Message) error { return errors.New("no good") })
	assert.EqualError(t, err, "x: message 1 of 1 to t: no good: pubsub: invalid message")
}

func TestAssignIDs(t *testing.T) {
	a, b := &pubsub.Message{}, &pubsub.Message{ID: "keep"}
	pubsub.AssignIDs([]*pubsub.Message{a, b})
	assert.Len(t, a.ID, 32)
	assert.Equal(t, "keep", b.ID)
}
