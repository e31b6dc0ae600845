package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

func TestListGroups(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, memory.Config{})

	_, err := b.ListGroups(ctx, "never-used")
	require.ErrorIs(t, err, pubsub.ErrNotFound)

	require.NoError(t, b.Publish(ctx, "t", pubsub.NewMessage([]byte("before any group"))))
	got, err := b.ListGroups(ctx, "t")
	require.NoError(t, err)
	assert.Empty(t, got, "a published topic without groups is known and empty")

	require.NoError(t, b.CreateGroup(ctx, "t", "zeta"))
	require.NoError(t, b.CreateGroup(ctx, "t", "alpha"))
	require.NoError(t, b.CreateGroup(ctx, "other", "alpha"))
	for range 3 {
		require.NoError(t, b.Publish(ctx, "t", pubsub.NewMessage([]byte("x"))))
	}

	// alpha dead-letters two messages at once and acks the third.
	handled := make(chan struct{}, 3)
	n := 0
	sub, err := b.Subscribe(ctx, "t", "alpha", func(context.Context, *pubsub.Message) error {
		defer func() { handled <- struct{}{} }()
		n++
		if n <= 2 {
			return pubsub.Permanent(errors.New("bad"))
		}
		return nil
	}, pubsub.WithConcurrency(1))
	require.NoError(t, err)
	for range 3 {
		recv(t, handled)
	}
	require.NoError(t, sub.Close()) // settles the third

	got, err = b.ListGroups(ctx, "t")
	require.NoError(t, err)
	assert.Equal(t, []pubsub.GroupInfo{
		{Name: "alpha", Backlog: 0, DeadLetters: 2},
		{Name: "zeta", Backlog: 3, DeadLetters: 0},
	}, got, "sorted by name, exact counts")

	require.NoError(t, b.DeleteGroup(ctx, "t", "zeta"))
	got, err = b.ListGroups(ctx, "t")
	require.NoError(t, err)
	assert.Equal(t, []pubsub.GroupInfo{{Name: "alpha", Backlog: 0, DeadLetters: 2}}, got)

	_, err = b.ListGroups(ctx, "bad name")
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
}
