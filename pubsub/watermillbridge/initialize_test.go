package watermillbridge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/watermillbridge"
)

// SubscribeInitialize creates the group, so that what is published before
// the first Subscribe is kept for it; before it, a topic with no group keeps
// nothing.
func TestSubscribeInitialize(t *testing.T) {
	b := newBroker(t)
	pub := watermillbridge.NewPublisher(b)
	sub := watermillbridge.NewSubscriber(b, "g")
	require.NoError(t, pub.Publish("orders", message.NewMessage("before", nil)))
	require.NoError(t, sub.SubscribeInitialize("orders"))
	require.NoError(t, sub.SubscribeInitialize("orders"), "idempotent")
	require.NoError(t, pub.Publish("orders", message.NewMessage("after", nil)))

	ch, err := sub.Subscribe(context.Background(), "orders")
	require.NoError(t, err)
	m := next(t, ch)
	assert.Equal(t, "after", m.UUID)
	m.Ack()
	select {
	case m := <-ch:
		t.Fatalf("%s arrived, published before the group existed", m.UUID)
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, sub.Close())
	assert.ErrorIs(t, sub.SubscribeInitialize("orders"), pubsub.ErrClosed)
}

// A Switchyard Subscriber that cannot create groups makes
// SubscribeInitialize fail rather than pretend.
func TestSubscribeInitializeUnsupported(t *testing.T) {
	b := newBroker(t)
	sub := watermillbridge.NewSubscriber(struct{ pubsub.Subscriber }{b}, "g")
	assert.ErrorIs(t, sub.SubscribeInitialize("orders"), errors.ErrUnsupported)
	_, err := b.ListDeadLetters(context.Background(), "orders", "g", 0)
	assert.ErrorIs(t, err, pubsub.ErrNotFound, "no group was created")
}
