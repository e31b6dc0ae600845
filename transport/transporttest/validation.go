package transporttest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

func (s *suite) testInvalidNames(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	h := newInbox().handler(0)
	badNames := map[string]string{
		"empty":        "",
		"space":        "has space",
		"slash":        "a/b",
		"non-ASCII":    "caf\u00e9",
		"201 bytes":    strings.Repeat("a", pubsub.MaxNameLength+1),
		"wildcard":     "orders.*",
		"control char": "a\nb",
	}
	for what, name := range badNames {
		t.Run(what, func(t *testing.T) {
			err := b.Publish(ctx, name, pubsub.NewMessage([]byte("x")))
			assert.ErrorIs(t, err, pubsub.ErrInvalidTopic, "Publish to topic %q", name)
			_, err = b.Subscribe(ctx, name, "g", h)
			assert.ErrorIs(t, err, pubsub.ErrInvalidTopic, "Subscribe to topic %q", name)
			_, err = b.Subscribe(ctx, topicName(t), name, h)
			assert.ErrorIs(t, err, pubsub.ErrInvalidGroup, "Subscribe with group %q", name)
		})
	}
	t.Run("bad options", func(t *testing.T) {
		topic := topicName(t)
		for i, tc := range []struct {
			opt  pubsub.SubscribeOption
			want error
		}{
			{pubsub.WithConcurrency(0), pubsub.ErrInvalidOption},
			{pubsub.WithMaxAttempts(0), pubsub.ErrInvalidOption},
			{pubsub.WithBackoff(0, time.Second), pubsub.ErrInvalidOption},
			{pubsub.WithBackoff(time.Second, time.Millisecond), pubsub.ErrInvalidOption},
			{pubsub.WithDrainTimeout(-1), pubsub.ErrInvalidOption},
			{pubsub.WithDeadLetter("bad topic"), pubsub.ErrInvalidTopic},
		} {
			_, err := b.Subscribe(ctx, topic, "g", h, tc.opt)
			assert.ErrorIs(t, err, tc.want, "option %d", i)
		}
		_, err := b.Subscribe(ctx, topic, "g", nil)
		assert.ErrorIs(t, err, pubsub.ErrInvalidOption, "nil handler")
	})
	t.Run("nil message", func(t *testing.T) {
		err := b.Publish(ctx, topicName(t), nil)
		assert.ErrorIs(t, err, pubsub.ErrInvalidMessage)
	})
	t.Run("longest name is valid", func(t *testing.T) {
		long := topicName(t) + "-"
		long += strings.Repeat("x", pubsub.MaxNameLength-len(long))
		require.Len(t, long, pubsub.MaxNameLength)
		assert.NoError(t, b.Publish(ctx, long, pubsub.NewMessage([]byte("x"))))
	})
}

// testInvalidBatch: one bad message in a batch fails the whole Publish
// before anything is sent.
func (s *suite) testInvalidBatch(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", in.handler(0))

	good := &pubsub.Message{ID: "good", Payload: []byte("good")}
	err := b.Publish(ctx, topic, good, nil)
	require.ErrorIs(t, err, pubsub.ErrInvalidMessage)
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "marker"}))

	got := in.waitN(t, 1, s.h.Timeout)
	assert.Equal(t, []string{"marker"}, ids(in.quiet(quietPeriod)), "only the marker arrives; the failed batch sent nothing")
	assert.Equal(t, "marker", got[0].msg.ID)
}

func (s *suite) testOversize(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", in.handler(0))

	huge := &pubsub.Message{ID: "huge", Payload: bytes.Repeat([]byte{'x'}, s.f.MaxMessageBytes+1)}
	err := b.Publish(ctx, topic, huge)
	require.ErrorIs(t, err, pubsub.ErrMessageTooLarge)

	err = b.Publish(ctx, topic, &pubsub.Message{ID: "small", Payload: []byte("small")}, huge)
	require.ErrorIs(t, err, pubsub.ErrMessageTooLarge, "a batch with one oversize message")

	half := &pubsub.Message{ID: "half", Payload: bytes.Repeat([]byte{'y'}, s.f.MaxMessageBytes/2)}
	require.NoError(t, b.Publish(ctx, topic, half), "a message of half the limit is accepted")
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "marker"}))
	got := in.waitN(t, 2, s.h.Timeout)
	assert.Equal(t, []string{"half", "marker"}, ids(in.quiet(quietPeriod)), "nothing of the failed publishes arrives")
	for _, d := range got {
		if d.msg.ID == "half" {
			assert.Equal(t, half.Payload, d.msg.Payload)
		}
	}
}
