package pubsub_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

type signup struct {
	UserID string `json:"user_id"`
	Plan   string `json:"plan"`
}

func newMemory(t *testing.T, opts ...pubsub.BrokerOption) *pubsub.Client {
	b, err := memory.New(memory.Config{}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestTypedTopicRoundTrip(t *testing.T) {
	ctx := context.Background()
	b := newMemory(t)
	signups := pubsub.NewTopic[signup]("signups")
	got := make(chan *pubsub.Message, 1)
	vals := make(chan signup, 1)
	_, err := signups.Subscribe(ctx, b, "welcome", func(_ context.Context, v signup, m *pubsub.Message) error {
		vals <- v
		got <- m
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, signups.Publish(ctx, b, signup{UserID: "u1", Plan: "pro"},
		pubsub.WithKey("u1"), pubsub.WithID("evt-1"), pubsub.WithMetadata("source", "web")))
	select {
	case v := <-vals:
		assert.Equal(t, signup{UserID: "u1", Plan: "pro"}, v)
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	m := <-got
	assert.Equal(t, "evt-1", m.ID)
	assert.Equal(t, "u1", m.Key)
	ceTime, err := time.Parse(time.RFC3339Nano, m.Metadata[pubsub.MetadataCETime])
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), ceTime, 5*time.Second)
	delete(m.Metadata, pubsub.MetadataCETime)
	assert.Equal(t, map[string]string{
		"content-type":   "application/json",
		"source":         "web",
		"ce-id":          "evt-1",
		"ce-source":      "/pubsub.test",
		"ce-type":        "signups",
		"ce-specversion": "1.0",
	}, m.Metadata)
	assert.JSONEq(t, `{"user_id":"u1","plan":"pro"}`, string(m.Payload))
	assert.Equal(t, "signups", signups.Name())
}

func TestTypedTopicUndecodableGoesToDeadLetterAtOnce(t *testing.T) {
	ctx := context.Background()
	settled := make(chan pubsub.Outcome, 1)
	b := newMemory(t, pubsub.WithLogger(quietLog), pubsub.WithObserver(pubsub.Observer{
		OnSettle: func(_ context.Context, st pubsub.Settlement) { settled <- st.Outcome }}))
	signups := pubsub.NewTopic[signup]("signups")
	var calls atomic.Int32
	_, err := signups.Subscribe(ctx, b, "welcome", func(context.Context, signup, *pubsub.Message) error {
		calls.Add(1)
		return nil
	})
	require.NoError(t, err)

	require.NoError(t, b.Publish(ctx, "signups", &pubsub.Message{ID: "junk", Payload: []byte("not json")}))
	select {
	case o := <-settled:
		require.Equal(t, pubsub.OutcomeDeadLettered, o)
		dls, err := b.ListDeadLetters(ctx, "signups", "welcome", 0)
		require.NoError(t, err)
		require.Len(t, dls, 1)
		m := dls[0]
		assert.Equal(t, "junk", m.ID)
		assert.Equal(t, "1", m.Metadata[pubsub.MetadataAttempts])
		assert.True(t, strings.HasPrefix(m.Metadata[pubsub.MetadataDeadLetterReason], "pubsub: decode pubsub_test.signup from topic signups: "),
			m.Metadata[pubsub.MetadataDeadLetterReason])
	case <-time.After(5 * time.Second):
		t.Fatal("no dead letter")
	}
	assert.Zero(t, calls.Load())
}

func TestTypedTopicEncodeErrorBeforeIO(t *testing.T) {
	b := newMemory(t)
	ch := pubsub.NewTopic[chan int]("chans")
	err := ch.Publish(context.Background(), b, make(chan int))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pubsub: encode chan int for topic chans")
}

func TestTypedTopicCloudEventsOptions(t *testing.T) {
	ctx := context.Background()
	b := newMemory(t)
	topic := pubsub.NewTopic[signup]("signups", pubsub.WithSource("https://example.com/signup"), pubsub.WithEventType("com.example.signup.v1"))
	got := make(chan *pubsub.Message, 1)
	_, err := topic.Subscribe(ctx, b, "g", func(_ context.Context, _ signup, m *pubsub.Message) error { got <- m; return nil })
	require.NoError(t, err)
	require.NoError(t, topic.Publish(ctx, b, signup{UserID: "u"}))
	select {
	case m := <-got:
		assert.Equal(t, "https://example.com/signup", m.Metadata[pubsub.MetadataCESource])
		assert.Equal(t, "com.example.signup.v1", m.Metadata[pubsub.MetadataCEType])
		assert.Equal(t, m.ID, m.Metadata[pubsub.MetadataCEID])
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
}
