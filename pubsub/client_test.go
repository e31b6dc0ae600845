package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

func TestPublishValidatesBeforeIO(t *testing.T) {
	ctx := context.Background()
	f := newFakeBroker()
	c := f.client(t)
	a := &pubsub.Message{Payload: []byte("a")}
	err := c.Publish(ctx, "orders", a, nil)
	assert.EqualError(t, err, "pubsub: message 2 of 2 to orders is nil: pubsub: invalid message")
	assert.Empty(t, a.ID, "no ID set when the batch is refused")
	assert.ErrorIs(t, c.Publish(ctx, "bad topic", a), pubsub.ErrInvalidTopic)

	f.checkErr = errors.Join(errors.New("fake: 10 bytes over 5"), pubsub.ErrMessageTooLarge)
	err = c.Publish(ctx, "orders", a)
	assert.ErrorIs(t, err, pubsub.ErrMessageTooLarge)
	assert.Contains(t, err.Error(), "pubsub: message 1 of 1 to orders: fake: 10 bytes over 5")
	f.checkErr = nil

	f.namesErr = errors.Join(errors.New("fake: reserved"), pubsub.ErrInvalidTopic)
	assert.ErrorIs(t, c.Publish(ctx, "amq.x", a), pubsub.ErrInvalidTopic)
	f.namesErr = nil
	f.mu.Lock()
	assert.Empty(t, f.sent, "nothing sent by refused publishes")
	f.mu.Unlock()

	require.NoError(t, c.Publish(ctx, "orders", a, &pubsub.Message{ID: "kept"}))
	assert.Len(t, a.ID, 32, "ID set after validation")
	f.mu.Lock()
	assert.Equal(t, []string{a.ID, "kept"}, []string{f.sent["orders"][0].ID, f.sent["orders"][1].ID})
	f.mu.Unlock()
	assert.NoError(t, c.Publish(ctx, "orders"), "an empty batch is a no-op")
}

func TestPublishErrorNamesFailedMessages(t *testing.T) {
	f := newFakeBroker()
	c := f.client(t)
	f.sendErr = &driver.BatchError{Failed: []int{1, 2}, Err: errors.New("nacked")}
	err := c.Publish(context.Background(), "orders", &pubsub.Message{ID: "a"}, &pubsub.Message{ID: "b"}, &pubsub.Message{ID: "c"})
	var pe *pubsub.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "orders", pe.Topic)
	assert.Equal(t, []int{1, 2}, pe.Failed)
	assert.Equal(t, []string{"b", "c"}, pe.IDs)
	assert.EqualError(t, err, "pubsub: publish to orders: 2 messages not accepted (first b): nacked")
}

func TestPublishContextErrorUnwrapped(t *testing.T) {
	f := newFakeBroker()
	c := f.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.sendErr = errors.Join(errors.New("fake: waiting for confirms"), context.Canceled)
	assert.Equal(t, context.Canceled, c.Publish(ctx, "orders", &pubsub.Message{}))
}

func TestBadBrokerOptionsDoNotOpen(t *testing.T) {
	opened := false
	_, err := pubsub.NewClient(context.Background(), func(context.Context, driver.Env) (driver.Broker, error) {
		opened = true
		return newFakeBroker(), nil
	}, pubsub.WithConcurrency(0), pubsub.WithDrainTimeout(-time.Second), pubsub.WithMiddleware(nil))
	require.ErrorIs(t, err, pubsub.ErrInvalidOption)
	for _, part := range []string{"concurrency 0", "drain timeout -1s", "middleware 1 is nil"} {
		assert.Contains(t, err.Error(), part)
	}
	assert.False(t, opened)
}

// Broker options set the defaults of every subscription; Subscribe's options
// override them.
func TestBrokerOptionsAreSubscriptionDefaults(t *testing.T) {
	f := newFakeBroker()
	c := f.client(t, pubsub.WithMaxAttempts(2), pubsub.WithBackoff(time.Hour, time.Hour))
	_, err := c.Subscribe(context.Background(), "orders", "billing", func(context.Context, *pubsub.Message) error {
		return errors.New("fail")
	}, pubsub.WithBackoff(time.Millisecond, time.Millisecond), pubsub.WithConcurrency(1))
	require.NoError(t, err)
	f.deliver("m1", 1)
	f.deliver("m1", 2)
	got := f.waitSettled(t, 2)
	assert.Equal(t, "retry", got[0].kind)
	assert.LessOrEqual(t, got[0].delay, time.Millisecond, "the subscription's backoff")
	assert.Equal(t, "deadletter", got[1].kind, "the broker's max attempts")
}

// Shutdown drains subscriptions while publishing works, then refuses
// everything and closes the driver once.
func TestShutdownPhases(t *testing.T) {
	ctx := context.Background()
	f := newFakeBroker()
	c := f.client(t)
	started, release := make(chan struct{}), make(chan struct{})
	published := make(chan error, 1)
	sub, err := c.Subscribe(ctx, "orders", "billing", func(hctx context.Context, m *pubsub.Message) error {
		close(started)
		<-release
		err := c.Publish(hctx, "invoices", &pubsub.Message{ID: "from-" + m.ID})
		published <- err
		return err
	})
	require.NoError(t, err)
	f.deliver("m1", 1)
	<-started
	done := make(chan error, 1)
	go func() { done <- c.Shutdown(ctx) }()
	<-sub.Stopping()
	_, err = c.Subscribe(ctx, "orders", "other", func(context.Context, *pubsub.Message) error { return nil })
	assert.ErrorIs(t, err, pubsub.ErrClosed, "Subscribe while draining")
	require.NoError(t, c.Ping(ctx), "the broker still works while draining")
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, <-published, "publish from a handler during the drain")
	assert.Equal(t, []settlement{{id: "m1", kind: "ack"}}, f.snapshot())
	f.mu.Lock()
	assert.True(t, f.closed, "driver closed")
	assert.Equal(t, 1, f.subsClosed)
	assert.Len(t, f.sent["invoices"], 1)
	f.mu.Unlock()

	assert.ErrorIs(t, c.Publish(ctx, "orders", &pubsub.Message{}), pubsub.ErrClosed)
	_, err = c.Subscribe(ctx, "orders", "billing", func(context.Context, *pubsub.Message) error { return nil })
	assert.ErrorIs(t, err, pubsub.ErrClosed)
	assert.ErrorIs(t, c.CreateGroup(ctx, "orders", "g"), pubsub.ErrClosed)
	_, err = c.ListDeadLetters(ctx, "orders", "g", 1)
	assert.ErrorIs(t, err, pubsub.ErrClosed)
	assert.ErrorIs(t, c.Ping(ctx), pubsub.ErrClosed)
	assert.NoError(t, c.Close(), "idempotent")
}

// A Publish still waiting when Shutdown reaches phase 3 is waited for.
func TestShutdownWaitsForPublishInProgress(t *testing.T) {
	var once sync.Once
	entered, release := make(chan struct{}), make(chan struct{})
	blocking := &blockingSend{fakeBroker: newFakeBroker(), entered: entered, release: release, once: &once}
	c, err := pubsub.NewClient(context.Background(), func(context.Context, driver.Env) (driver.Broker, error) { return blocking, nil }, pubsub.WithLogger(quietLog))
	require.NoError(t, err)
	pubErr := make(chan error, 1)
	go func() { pubErr <- c.Publish(context.Background(), "orders", &pubsub.Message{ID: "slow"}) }()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a Publish was in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-pubErr)
	require.NoError(t, <-closed)
}

type blockingSend struct {
	*fakeBroker
	entered, release chan struct{}
	once             *sync.Once
}

func (b *blockingSend) SendBatch(ctx context.Context, topic string, msgs []*driver.Message) error {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.fakeBroker.SendBatch(ctx, topic, msgs)
}

func TestPublishMiddlewareOrder(t *testing.T) {
	f := newFakeBroker()
	var trail []string
	mw := func(name string) func(pubsub.PublishFunc) pubsub.PublishFunc {
		return func(next pubsub.PublishFunc) pubsub.PublishFunc {
			return func(ctx context.Context, topic string, msgs []*pubsub.Message) error {
				trail = append(trail, name)
				return next(ctx, topic, msgs)
			}
		}
	}
	c := f.client(t, pubsub.WithPublishMiddleware(mw("a"), mw("b")), pubsub.WithOptions(pubsub.WithPublishMiddleware(mw("c"))))
	require.NoError(t, c.Publish(context.Background(), "orders", &pubsub.Message{}))
	assert.Equal(t, []string{"a", "b", "c"}, trail)
}

// listingBroker is a fake driver that can list groups.
type listingBroker struct {
	*fakeBroker
	groups []driver.GroupInfo
	err    error
	topics []string // topics ListGroups was asked about
}

func (l *listingBroker) ListGroups(_ context.Context, topic string) ([]driver.GroupInfo, error) {
	l.topics = append(l.topics, topic)
	return l.groups, l.err
}

func TestListGroups(t *testing.T) {
	ctx := context.Background()
	t.Run("unsupported", func(t *testing.T) {
		c := newFakeBroker().client(t)
		_, err := c.ListGroups(ctx, "t")
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})
	t.Run("driver answers", func(t *testing.T) {
		l := &listingBroker{fakeBroker: newFakeBroker(), groups: []driver.GroupInfo{{Name: "a", Backlog: 3, DeadLetters: -1}}}
		c, err := pubsub.NewClient(ctx, func(context.Context, driver.Env) (driver.Broker, error) { return l, nil }, pubsub.WithLogger(quietLog))
		require.NoError(t, err)
		got, err := c.ListGroups(ctx, "t")
		require.NoError(t, err)
		assert.Equal(t, []pubsub.GroupInfo{{Name: "a", Backlog: 3, DeadLetters: -1}}, got)

		l.err = fmt.Errorf("x: %w", driver.ErrNotFound)
		_, err = c.ListGroups(ctx, "t")
		assert.ErrorIs(t, err, pubsub.ErrNotFound)

		_, err = c.ListGroups(ctx, "bad topic")
		assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
		assert.Equal(t, []string{"t", "t"}, l.topics, "invalid names never reach the driver")

		require.NoError(t, c.Close())
		_, err = c.ListGroups(ctx, "t")
		assert.ErrorIs(t, err, pubsub.ErrClosed)
	})
}
