package transporttest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// admin returns b's dead-letter admin, failing t if it has none.
func admin(t *testing.T, b pubsub.Broker) pubsub.DeadLetterAdmin {
	t.Helper()
	a, ok := b.(pubsub.DeadLetterAdmin)
	require.True(t, ok, "%T does not implement pubsub.DeadLetterAdmin", b)
	return a
}

// waitDeadLetters waits until group of topic holds n dead letters and
// returns them, failing t after the harness timeout.
func (s *suite) waitDeadLetters(t *testing.T, b pubsub.Broker, topic, group string, n int) []*pubsub.Message {
	t.Helper()
	ctx := s.ctx(t)
	var got []*pubsub.Message
	deadline := time.Now().Add(s.h.Timeout)
	for {
		var err error
		got, err = admin(t, b).ListDeadLetters(ctx, topic, group, 0)
		require.NoError(t, err, "ListDeadLetters(%s, %s)", topic, group)
		if len(got) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the broker: no event to wait on
	}
	require.Len(t, got, n, "dead letters of %s/%s", topic, group)
	return got
}

// deadLetterCase runs a handler of group "billing" that always fails with
// err, and returns the handler's deliveries and the one dead letter, read
// with ListDeadLetters.
func (s *suite) deadLetterCase(t *testing.T, err error, opts ...pubsub.SubscribeOption) ([]delivery, *pubsub.Message) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	calls := newInbox()
	opts = append([]pubsub.SubscribeOption{pubsub.WithBackoff(10*time.Millisecond, 20*time.Millisecond)}, opts...)
	subscribe(t, ctx, b, topic, "billing", func(_ context.Context, m *pubsub.Message) error {
		calls.add(0, m)
		m.Metadata["trace"] = "changed by the handler" // the dead letter keeps the original
		return err
	}, opts...)

	sent := &pubsub.Message{ID: "doomed", Key: "k", Metadata: map[string]string{"trace": "t-1"}, Payload: []byte{0, 1, 2}}
	require.NoError(t, b.Publish(ctx, topic, sent))
	m := s.waitDeadLetters(t, b, topic, "billing", 1)[0]
	assert.Equal(t, "doomed", m.ID)
	assert.Equal(t, "k", m.Key)
	assert.Equal(t, []byte{0, 1, 2}, m.Payload)
	assert.Equal(t, "t-1", m.Metadata["trace"])
	assert.Equal(t, topic, m.Metadata[pubsub.MetadataOriginalTopic])
	assert.Equal(t, "billing", m.Metadata[pubsub.MetadataGroup])
	when, perr := time.Parse(time.RFC3339Nano, m.Metadata[pubsub.MetadataDeadLetterTime])
	require.NoError(t, perr, "dead-letter time")
	assert.WithinDuration(t, time.Now(), when, time.Minute)
	return calls.quiet(quietPeriod), m
}

func (s *suite) testDeadLetterMaxAttempts(t *testing.T) {
	calls, m := s.deadLetterCase(t, errors.New("card declined"), pubsub.WithMaxAttempts(3))
	require.Len(t, calls, 3, "handler called MaxAttempts times")
	for i, c := range calls {
		assert.Equal(t, i+1, c.msg.Attempt)
	}
	assert.Equal(t, "card declined", m.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "3", m.Metadata[pubsub.MetadataAttempts])
}

func (s *suite) testDeadLetterPermanent(t *testing.T) {
	calls, m := s.deadLetterCase(t, pubsub.Permanent(errors.New("malformed order")), pubsub.WithMaxAttempts(5))
	require.Len(t, calls, 1, "no retries for Permanent")
	assert.Equal(t, "malformed order", m.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "1", m.Metadata[pubsub.MetadataAttempts])
}

// testDeadLetterCustomTopic: WithDeadLetter publishes dead letters to a
// topic of one's own instead of the group's dead letters.
func (s *suite) testDeadLetterCustomTopic(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	custom := topic + "-graveyard"
	dead := newInbox()
	subscribe(t, ctx, b, custom, "undertaker", dead.handler(0))
	subscribe(t, ctx, b, topic, "billing", func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New("nope"))
	}, pubsub.WithDeadLetter(custom))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "doomed", Payload: []byte("p")}))
	dead.waitN(t, 1, s.h.Timeout)
	got := dead.quiet(quietPeriod)
	require.Len(t, got, 1)
	assert.Equal(t, "doomed", got[0].msg.ID)
	assert.Equal(t, "nope", got[0].msg.Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "billing", got[0].msg.Metadata[pubsub.MetadataGroup])
	assert.Equal(t, 1, got[0].msg.Attempt, "a dead letter published to a topic is a new message there")
	own, err := admin(t, b).ListDeadLetters(ctx, topic, "billing", 0)
	require.NoError(t, err)
	assert.Empty(t, own, "nothing in the group's own dead letters")
}

// testDeadLettersIsolated: a dead letter belongs to the group that gave up
// on it; the topic's other groups neither see it nor hold it.
func (s *suite) testDeadLettersIsolated(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	failing, healthy := newInbox(), newInbox()
	subscribe(t, ctx, b, topic, "failing", func(_ context.Context, m *pubsub.Message) error {
		failing.add(0, m)
		return pubsub.Permanent(errors.New("no"))
	})
	subscribe(t, ctx, b, topic, "healthy", healthy.handler(0))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "m1"}, &pubsub.Message{ID: "m2"}))

	dls := s.waitDeadLetters(t, b, topic, "failing", 2)
	assert.Equal(t, []string{"m1", "m2"}, msgIDs(dls))
	healthy.waitN(t, 2, s.h.Timeout)
	assert.Equal(t, []string{"m1", "m2"}, ids(healthy.quiet(quietPeriod)), "the healthy group gets each message once and no dead letter")
	assert.Len(t, failing.snapshot(), 2, "each failing message handled once")
	other, err := admin(t, b).ListDeadLetters(ctx, topic, "healthy", 0)
	require.NoError(t, err)
	assert.Empty(t, other, "no dead letters in the healthy group")
}

// testDeadLetterAdmin: list (oldest first, limit, not consuming), replay by
// ID (Attempt starts again at 1), purge by ID and all, unknown groups.
func (s *suite) testDeadLetterAdmin(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	a := admin(t, b)
	topic := topicName(t)
	in := newInbox()
	accept := make(chan struct{})
	subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		in.add(0, m)
		select {
		case <-accept:
			return nil
		default:
			return pubsub.Permanent(errors.New("rejected " + m.ID))
		}
	}, pubsub.WithConcurrency(1))
	for i, id := range []string{"d1", "d2", "d3"} {
		require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: id, Key: "key-" + id, Metadata: map[string]string{"app": id}, Payload: []byte("payload " + id)}))
		s.waitDeadLetters(t, b, topic, "g", i+1) // stored in this order
	}
	all := s.waitDeadLetters(t, b, topic, "g", 3)
	assert.Equal(t, []string{"d1", "d2", "d3"}, []string{all[0].ID, all[1].ID, all[2].ID}, "oldest first")
	assert.Equal(t, "rejected d2", all[1].Metadata[pubsub.MetadataDeadLetterReason])
	assert.Equal(t, "d2", all[1].Metadata["app"])
	assert.Equal(t, "key-d2", all[1].Key)
	assert.Equal(t, []byte("payload d2"), all[1].Payload)

	two, err := a.ListDeadLetters(ctx, topic, "g", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"d1", "d2"}, []string{two[0].ID, two[1].ID}, "limit")
	again := s.waitDeadLetters(t, b, topic, "g", 3)
	assert.Equal(t, "d1", again[0].ID, "listing does not consume")

	close(accept)
	n, err := a.ReplayDeadLetters(ctx, topic, "g", "d2", "not-there")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "one replayed; unknown IDs skipped")
	in.waitN(t, 4, s.h.Timeout)
	replayed := in.quiet(quietPeriod)[3].msg
	assert.Equal(t, "d2", replayed.ID)
	assert.Equal(t, 1, replayed.Attempt, "a replayed message starts again at Attempt 1")
	assert.Equal(t, "d2", replayed.Metadata["app"])
	assert.Equal(t, "key-d2", replayed.Key)
	assert.NotContains(t, replayed.Metadata, pubsub.MetadataDeadLetterReason, "no dead-letter metadata on the replayed message")
	left := s.waitDeadLetters(t, b, topic, "g", 2)
	assert.Equal(t, []string{"d1", "d3"}, []string{left[0].ID, left[1].ID})

	n, err = a.PurgeDeadLetters(ctx, topic, "g", "d3")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, "d1", s.waitDeadLetters(t, b, topic, "g", 1)[0].ID)
	n, err = a.PurgeDeadLetters(ctx, topic, "g")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "purge all")
	s.waitDeadLetters(t, b, topic, "g", 0)
	assert.Len(t, in.snapshot(), 4, "purged dead letters are not delivered")

	_, err = a.ListDeadLetters(ctx, topic, "no-such-group", 10)
	assert.ErrorIs(t, err, pubsub.ErrNotFound)
	_, err = a.ReplayDeadLetters(ctx, topic, "no-such-group")
	assert.ErrorIs(t, err, pubsub.ErrNotFound)
	_, err = a.PurgeDeadLetters(ctx, topic, "no-such-group")
	assert.ErrorIs(t, err, pubsub.ErrNotFound)
	_, err = a.ListDeadLetters(ctx, topic, "bad group", 10)
	assert.ErrorIs(t, err, pubsub.ErrInvalidGroup)
}

// testReplayOneGroup: replaying a group's dead letters reaches that group
// and no other group of the topic.
func (s *suite) testReplayOneGroup(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	failOnce, other := newInbox(), newInbox()
	subscribe(t, ctx, b, topic, "fails-once", func(_ context.Context, m *pubsub.Message) error {
		failOnce.add(0, m)
		if len(failOnce.snapshot()) == 1 {
			return pubsub.Permanent(errors.New("first time"))
		}
		return nil
	})
	subscribe(t, ctx, b, topic, "other", other.handler(0))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "r1"}))
	s.waitDeadLetters(t, b, topic, "fails-once", 1)
	n, err := admin(t, s.h.NewBroker(t)).ReplayDeadLetters(ctx, topic, "fails-once")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got := failOnce.waitN(t, 2, s.h.Timeout)
	assert.Equal(t, []int{1, 1}, []int{got[0].msg.Attempt, got[1].msg.Attempt})
	assert.Equal(t, []string{"r1"}, ids(other.quiet(quietPeriod)), "the other group got the message once, and not the replay")
	assert.Len(t, failOnce.snapshot(), 2)
	s.waitDeadLetters(t, b, topic, "fails-once", 0)
}

// testDeadLetterParked: when the dead letter cannot be stored, the message
// is parked: its handler does not run again, storing is retried, and once
// storage works the dead letter is there. A member that stops while holding
// a parked message hands it back so that no handler runs it again either.
func (s *suite) testDeadLetterParked(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	require.NoError(t, b.(pubsub.GroupCreator).CreateGroup(ctx, topic, "g"))
	restore := s.h.BreakDeadLetters(t, topic, "g")
	calls := newInbox()
	parked := make(chan struct{}, 10)
	handler := func(_ context.Context, m *pubsub.Message) error {
		calls.add(0, m)
		return pubsub.Permanent(errors.New("poison"))
	}
	parkedObserver := pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, st pubsub.Settlement) {
		if st.Outcome == pubsub.OutcomeParked {
			parked <- struct{}{}
		}
	}})
	sub := subscribe(t, ctx, b, topic, "g", handler, pubsub.WithMaxAttempts(2),
		pubsub.WithBackoff(20*time.Millisecond, 50*time.Millisecond), parkedObserver)
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "poison-1"}))
	select {
	case <-parked:
	case <-time.After(s.h.Timeout):
		t.Fatal("the message was not parked")
	}
	assert.Len(t, calls.quiet(quietPeriod), 1, "while parked, the handler does not run again")

	// A member stopping with a parked message hands it back; the next
	// member dead-letters it without running the handler.
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, sub.Shutdown(sctx), context.DeadlineExceeded, "the parked message holds up the drain")
	subscribe(t, ctx, s.h.NewBroker(t), topic, "g", handler, pubsub.WithMaxAttempts(2),
		pubsub.WithBackoff(20*time.Millisecond, 50*time.Millisecond), parkedObserver)
	select {
	case <-parked:
	case <-time.After(s.h.Timeout):
		t.Fatal("the next member did not park the message")
	}
	restore()
	dl := s.waitDeadLetters(t, b, topic, "g", 1)[0]
	assert.Equal(t, "poison-1", dl.ID)
	assert.Len(t, calls.quiet(quietPeriod), 1, "the handler ran once in all: never past a failed dead letter")
}
