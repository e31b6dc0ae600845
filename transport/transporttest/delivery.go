package transporttest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"context"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// testFanOut: every group of a topic gets every message, exactly once when
// nothing fails.
func (s *suite) testFanOut(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	inboxes := []*inbox{newInbox(), newInbox(), newInbox()}
	for i, in := range inboxes {
		subscribe(t, ctx, b, topic, fmt.Sprintf("group-%d", i), in.handler(0))
	}
	msgs := newMessages("fan", 10)
	require.NoError(t, b.Publish(ctx, topic, msgs[:5]...), "batch")
	for _, m := range msgs[5:] {
		require.NoError(t, b.Publish(ctx, topic, m), "single")
	}
	for i, in := range inboxes {
		in.waitN(t, len(msgs), s.h.Timeout)
		assert.Equal(t, msgIDs(msgs), ids(in.quiet(quietPeriod)), "group-%d gets each message once", i)
	}
}

// testGroupStart: a group receives what is published after it was created,
// not before.
func (s *suite) testGroupStart(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	first := newInbox()
	subscribe(t, ctx, b, topic, "first", first.handler(0))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "early"}))
	first.waitN(t, 1, s.h.Timeout)

	late := newInbox()
	subscribe(t, ctx, b, topic, "late", late.handler(0))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "after"}))
	late.waitN(t, 1, s.h.Timeout)
	assert.Equal(t, []string{"after"}, ids(late.quiet(quietPeriod)))
	assert.Equal(t, []string{"after", "early"}, ids(first.waitN(t, 2, s.h.Timeout)))
}

// testCompetingConsumers: two members of a group in two clients share its
// messages; each message is handled once, by one member at a time.
func (s *suite) testCompetingConsumers(t *testing.T) {
	ctx := s.ctx(t)
	topic := topicName(t)
	in := newInbox()
	var mu sync.Mutex
	active := map[string]int{}
	overlap := 0
	for member := range 2 {
		b := s.h.NewBroker(t)
		subscribe(t, ctx, b, topic, "workers", func(ctx context.Context, m *pubsub.Message) error {
			mu.Lock()
			active[m.ID]++
			if active[m.ID] > 1 {
				overlap++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			active[m.ID]--
			mu.Unlock()
			in.add(member, m)
			return nil
		}, pubsub.WithConcurrency(2))
	}
	msgs := newMessages("job", 40)
	require.NoError(t, s.h.NewBroker(t).Publish(ctx, topic, msgs...))

	got := in.waitN(t, len(msgs), s.h.Timeout)
	assert.Equal(t, msgIDs(msgs), ids(in.quiet(quietPeriod)), "each message handled once")
	perMember := map[int]int{}
	for _, d := range got {
		perMember[d.member]++
	}
	assert.Positive(t, perMember[0], "member 0 got work: %v", perMember)
	assert.Positive(t, perMember[1], "member 1 got work: %v", perMember)
	mu.Lock()
	assert.Zero(t, overlap, "no message handled by two members at once")
	mu.Unlock()
}

// testDurableGroup: a group keeps messages published while no member runs.
func (s *suite) testDurableGroup(t *testing.T) {
	ctx := s.ctx(t)
	topic := topicName(t)
	first := s.h.NewBroker(t)
	sub := subscribe(t, ctx, first, topic, "durable", newInbox().handler(0))
	require.NoError(t, sub.Close())

	msgs := newMessages("kept", 5)
	require.NoError(t, s.h.NewBroker(t).Publish(ctx, topic, msgs...))

	in := newInbox()
	subscribe(t, ctx, s.h.NewBroker(t), topic, "durable", in.handler(0))
	in.waitN(t, len(msgs), s.h.Timeout)
	assert.Equal(t, msgIDs(msgs), ids(in.quiet(quietPeriod)))
}

// testConcurrentPublishers: concurrent Publish calls, single and batched,
// all arrive with the IDs they were given.
func (s *suite) testConcurrentPublishers(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", in.handler(0))

	const publishers, each = 8, 10
	var all []*pubsub.Message
	var wg sync.WaitGroup
	errs := make([]error, publishers)
	for p := range publishers {
		msgs := newMessages(fmt.Sprintf("pub%d", p), each)
		all = append(all, msgs...)
		wg.Go(func() {
			if p%2 == 0 {
				errs[p] = b.Publish(ctx, topic, msgs...)
				return
			}
			for _, m := range msgs {
				if err := b.Publish(ctx, topic, m); err != nil {
					errs[p] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for p, err := range errs {
		require.NoError(t, err, "publisher %d", p)
	}
	in.waitN(t, len(all), s.h.Timeout)
	assert.Equal(t, msgIDs(all), ids(in.quiet(quietPeriod)))
}
