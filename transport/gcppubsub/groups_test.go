package gcppubsub_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// groups returns groups with both counts unknown, as ListGroups tells them.
func groups(names ...string) []pubsub.GroupInfo {
	out := []pubsub.GroupInfo{}
	for _, n := range names {
		out = append(out, pubsub.GroupInfo{Name: n, Backlog: -1, DeadLetters: -1})
	}
	return out
}

// TestListGroups: the groups of a topic are its subscriptions with group
// IDs, mapped IDs and shortened ones included, and no other subscription;
// Pub/Sub tells no counts.
func TestListGroups(t *testing.T) {
	e := startEmulator(t)
	var logs testlog.Buffer
	b := newBroker(t, gcppubsub.Config{}, pubsub.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := context.Background()

	_, err := b.ListGroups(ctx, "never-used")
	require.ErrorIs(t, err, pubsub.ErrNotFound)

	require.NoError(t, b.Publish(ctx, "t", pubsub.NewMessage([]byte("before any group"))))
	got, err := b.ListGroups(ctx, "t")
	require.NoError(t, err)
	assert.Equal(t, groups(), got, "a topic without groups is known and empty")

	require.NoError(t, b.CreateGroup(ctx, "t", "zeta"))
	require.NoError(t, b.CreateGroup(ctx, "t", "alpha"))
	require.NoError(t, b.CreateGroup(ctx, "a", "b.c"))
	require.NoError(t, b.CreateGroup(ctx, "a.b", "c"))
	require.NoError(t, b.CreateGroup(ctx, "7days", "g")) // subscription sy~7days+g
	// Another client's subscription on t is no group.
	_, err = e.GServer.CreateSubscription(ctx, &pb.Subscription{
		Name:  "projects/" + testProject + "/subscriptions/t-monitor",
		Topic: "projects/" + testProject + "/topics/" + gcppubsub.TopicID("t"), // sy~t
	})
	require.NoError(t, err)

	for topic, want := range map[string][]pubsub.GroupInfo{
		"t": groups("alpha", "zeta"), "a": groups("b.c"), "a.b": groups("c"), "7days": groups("g"),
	} {
		got, err := b.ListGroups(ctx, topic)
		require.NoError(t, err)
		assert.Equal(t, want, got, "groups of %s", topic)
	}

	require.NoError(t, b.DeleteGroup(ctx, "t", "zeta"))
	got, err = b.ListGroups(ctx, "t")
	require.NoError(t, err)
	assert.Equal(t, groups("alpha"), got)

	// Shortened subscription IDs: the group is read from the filter, unless
	// the filter names it by a hash too (names over 180 bytes).
	long := "l" + strings.Repeat("x", 199)
	named, hashed := strings.Repeat("n", 100), strings.Repeat("h", 181)
	require.NotContains(t, gcppubsub.GroupID(long, named), named, "shortened")
	require.NoError(t, b.CreateGroup(ctx, long, named))
	require.NoError(t, b.CreateGroup(ctx, long, hashed))
	require.NoError(t, b.CreateGroup(ctx, long, "s"))
	got, err = b.ListGroups(ctx, long)
	require.NoError(t, err)
	assert.Equal(t, groups(named, "s"), got)
	assert.Contains(t, logs.String(), "gcppubsub: a subscription on the topic has the shortened ID of a group whose name it does not tell")
	assert.Contains(t, logs.String(), gcppubsub.GroupID(long, hashed))

	_, err = b.ListGroups(ctx, "bad name")
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
}
