package transporttest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// testNamesDoNotCollide: broker object names are injective (DESIGN line 1):
// topic "T" group "a.b" and topic "T.a" group "b" stay apart, and groups
// named like the transports' retry and dead-letter objects are groups like
// any other.
func (s *suite) testNamesDoNotCollide(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	base := topicName(t)
	type member struct{ topic, group string }
	members := []member{
		{base, "a.b"}, {base + ".a", "b"},
		{base, "dlq"}, {base, "dlq.a"}, {base + ".dlq", "a"},
		{base, "retry.100"}, {base, "a.retry.100"}, {base, "dead"}, {base, "a.dead"},
	}
	inboxes := make([]*inbox, len(members))
	for i, m := range members {
		inboxes[i] = newInbox()
		subscribe(t, ctx, b, m.topic, m.group, inboxes[i].handler(0))
	}
	require.NoError(t, b.Publish(ctx, base, &pubsub.Message{ID: "to-base"}))
	require.NoError(t, b.Publish(ctx, base+".a", &pubsub.Message{ID: "to-base.a"}))
	require.NoError(t, b.Publish(ctx, base+".dlq", &pubsub.Message{ID: "to-base.dlq"}))
	for i, m := range members {
		want := "to-base" + m.topic[len(base):]
		inboxes[i].waitN(t, 1, s.h.Timeout)
		assert.Equal(t, []string{want}, ids(inboxes[i].quiet(quietPeriod)), "topic %s group %s", m.topic, m.group)
	}

	// A group's dead letters stay its own even where names are close.
	fail := func(context.Context, *pubsub.Message) error { return pubsub.Permanent(errors.New("x")) }
	subscribe(t, ctx, b, base, "x.y", fail)
	subscribe(t, ctx, b, base+".x", "y", newInbox().handler(0))
	require.NoError(t, b.Publish(ctx, base, &pubsub.Message{ID: "dl"}))
	s.waitDeadLetters(t, b, base, "x.y", 1)
	other, err := admin(t, b).ListDeadLetters(ctx, base+".x", "y", 0)
	require.NoError(t, err)
	assert.Empty(t, other)
}

// testDeleteGroup: a deleted group is gone with its dead letters; the admin
// calls then say ErrNotFound, and a group made again starts empty.
func (s *suite) testDeleteGroup(t *testing.T) {
	ctx := s.ctx(t)
	b := s.h.NewBroker(t)
	topic := topicName(t)
	gc := b.(pubsub.GroupCreator)
	gd, ok := b.(pubsub.GroupDeleter)
	require.True(t, ok, "%T does not implement pubsub.GroupDeleter", b)
	require.NoError(t, gc.CreateGroup(ctx, topic, "g"))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "kept-then-deleted"}))
	require.NoError(t, gd.DeleteGroup(ctx, topic, "g"))
	_, err := admin(t, b).ListDeadLetters(ctx, topic, "g", 0)
	assert.ErrorIs(t, err, pubsub.ErrNotFound, "dead letters of a deleted group")
	assert.ErrorIs(t, gd.DeleteGroup(ctx, topic, "g"), pubsub.ErrNotFound, "deleting it again")

	require.NoError(t, gc.CreateGroup(ctx, topic, "g"))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "after"}))
	in := newInbox()
	sub := subscribe(t, ctx, b, topic, "g", in.handler(0))
	in.waitN(t, 1, s.h.Timeout)
	assert.Equal(t, []string{"after"}, ids(in.quiet(quietPeriod)), "the group made again holds nothing from before")
	require.NoError(t, sub.Close())
	require.NoError(t, gd.DeleteGroup(ctx, topic, "g"))
}
