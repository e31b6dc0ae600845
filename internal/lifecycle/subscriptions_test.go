package lifecycle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/lifecycle"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

func nop(context.Context, *pubsub.Message) error { return nil }

// The memory broker is built on Subscriptions; these tests drive it through
// the broker's Subscribe and Close.
func TestCloseStopsTrackedAndRefusesNew(t *testing.T) {
	ctx := context.Background()
	b, err := memory.New(memory.Config{})
	require.NoError(t, err)
	a, err := b.Subscribe(ctx, "t", "a", nop)
	require.NoError(t, err)
	c, err := b.Subscribe(ctx, "t", "c", nop)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	for _, sub := range []*pubsub.Subscription{a, c} {
		select {
		case <-sub.Done():
		default:
			t.Error("subscription left running")
		}
	}
	_, err = b.Subscribe(ctx, "t", "a", nop)
	assert.ErrorIs(t, err, pubsub.ErrClosed)
}

func TestStartStopAndErrors(t *testing.T) {
	var s lifecycle.Subscriptions
	boom := errors.New("boom")
	_, err := s.Start(func(func()) (*pubsub.Subscription, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)

	// A subscription whose context is already over stops at once; Start must
	// not keep it, and Close must not wait for it.
	b, err := memory.New(memory.Config{})
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg, err := pubsub.NewSubscribeConfig("t", "g")
	require.NoError(t, err)
	sub, err := s.Start(func(onStop func()) (*pubsub.Subscription, error) {
		return pubsub.StartSubscription(ctx, cfg, idle{}, b, nop, onStop)
	})
	require.NoError(t, err)
	select {
	case <-sub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("subscription with a cancelled context kept running")
	}
	require.NoError(t, s.Close())
	assert.True(t, s.Closed())
	_, err = s.Start(func(func()) (*pubsub.Subscription, error) { t.Fatal("start after Close"); return nil, nil })
	assert.ErrorIs(t, err, pubsub.ErrClosed)
}

// idle is a Receiver with nothing to deliver.
type idle struct{}

func (idle) Receive(ctx context.Context) (pubsub.Delivery, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (idle) Close() error { return nil }
