package transporttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// testRoundTrip: ID, Key, Metadata and payload bytes arrive unchanged.
func (s *suite) testRoundTrip(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", in.handler(0))

	sent := []*pubsub.Message{
		{
			ID:       "order-42",
			Key:      "customer-7",
			Metadata: map[string]string{"trace-id": "abc", "unicode": "caf\u00e9 \u2713", "empty": "", "content-type": "application/octet-stream"},
			Payload:  []byte{0xff, 0xfe, 0x00, 0x80, 'h', 'i', 0xc3},
		},
		{ID: "no-payload", Metadata: map[string]string{"k": "v"}},
		{ID: "bare", Payload: []byte("plain")},
	}
	require.NoError(t, b.Publish(ctx, topic, sent...))
	in.waitN(t, len(sent), s.h.Timeout)
	byID := map[string]*pubsub.Message{}
	for _, d := range in.quiet(quietPeriod) {
		byID[d.msg.ID] = d.msg
	}
	require.Len(t, byID, len(sent))
	for _, want := range sent {
		got := byID[want.ID]
		require.NotNil(t, got, want.ID)
		assert.Equal(t, want.Key, got.Key, want.ID)
		assert.Equal(t, len(want.Metadata), len(got.Metadata), "%s metadata %v", want.ID, got.Metadata)
		for k, v := range want.Metadata {
			assert.Equal(t, v, got.Metadata[k], "%s metadata %q", want.ID, k)
		}
		assert.Equal(t, len(want.Payload), len(got.Payload), want.ID)
		if len(want.Payload) > 0 {
			assert.Equal(t, want.Payload, got.Payload, want.ID)
		}
		assert.Equal(t, 1, got.Attempt, want.ID)
	}
}

// testPublishSetsID: Publish gives messages without an ID a unique one, and
// that is the ID delivered.
func (s *suite) testPublishSetsID(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", in.handler(0))
	a, c := &pubsub.Message{Payload: []byte("a")}, &pubsub.Message{Payload: []byte("c")}
	require.NoError(t, b.Publish(ctx, topic, a, c))
	require.NotEmpty(t, a.ID)
	require.NotEmpty(t, c.ID)
	require.NotEqual(t, a.ID, c.ID)
	in.waitN(t, 2, s.h.Timeout)
	assert.Equal(t, msgIDs([]*pubsub.Message{a, c}), ids(in.quiet(quietPeriod)))
}

// testOrdering: with OrderingByKey, one key's messages are handled one at a
// time in publish order, even with several handlers running.
func (s *suite) testOrdering(t *testing.T) {
	if !s.f.OrderingByKey {
		t.Skip("transport does not order by key (Features.OrderingByKey)")
	}
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	const keys, perKey = 3, 10
	in := newInbox()
	var mu sync.Mutex
	busy := map[string]bool{}
	overlaps := 0
	subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		mu.Lock()
		if busy[m.Key] {
			overlaps++
		}
		busy[m.Key] = true
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		mu.Lock()
		busy[m.Key] = false
		mu.Unlock()
		in.add(0, m)
		return nil
	}, pubsub.WithConcurrency(4))

	var sent []*pubsub.Message
	for i := range perKey {
		for k := range keys {
			sent = append(sent, &pubsub.Message{
				ID:       fmt.Sprintf("k%d-%d", k, i),
				Key:      fmt.Sprintf("k%d", k),
				Metadata: map[string]string{"seq": strconv.Itoa(i)},
			})
		}
	}
	require.NoError(t, b.Publish(ctx, topic, sent[:len(sent)/2]...))
	for _, m := range sent[len(sent)/2:] {
		require.NoError(t, b.Publish(ctx, topic, m))
	}
	got := in.waitN(t, len(sent), s.h.Timeout)
	seqs := map[string][]int{}
	for _, d := range got {
		n, _ := strconv.Atoi(d.msg.Metadata["seq"])
		seqs[d.msg.Key] = append(seqs[d.msg.Key], n)
	}
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		assert.Equal(t, want, seqs[fmt.Sprintf("k%d", k)], "key k%d in publish order", k)
	}
	mu.Lock()
	assert.Zero(t, overlaps, "one message per key at a time")
	mu.Unlock()
}
