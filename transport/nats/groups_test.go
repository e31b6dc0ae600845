package nats

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// eventuallyGroups polls ListGroups until it answers want: acknowledgements
// are not waited for, so the server may count an acked message for a
// moment.
func eventuallyGroups(t *testing.T, b *pubsub.Client, topic string, want []pubsub.GroupInfo) {
	t.Helper()
	var got []pubsub.GroupInfo
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = b.ListGroups(context.Background(), topic)
		require.NoError(t, err)
		if assert.ObjectsAreEqual(want, got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, want, got, "groups of %s", topic)
}

// TestListGroups: the groups of a topic, sorted, with their backlog
// (waiting, held, waiting out a retry, on the group's own subject) and
// dead letters, and nothing of other topics or foreign consumers.
func TestListGroups(t *testing.T) {
	raw := testURL(t, "")
	b := openTest(t, raw)
	ctx := context.Background()

	_, err := b.ListGroups(ctx, "never-used")
	require.ErrorIs(t, err, pubsub.ErrNotFound)

	require.NoError(t, b.Publish(ctx, "t", pubsub.NewMessage([]byte("before any group"))))
	got, err := b.ListGroups(ctx, "t")
	require.NoError(t, err)
	assert.Equal(t, []pubsub.GroupInfo{}, got, "a topic with a stream and no group is known and empty")

	require.NoError(t, b.CreateGroup(ctx, "t", "zeta"))
	require.NoError(t, b.CreateGroup(ctx, "t", "alpha"))
	// Topic "a" group "b.c" and topic "a.b" group "c": their dead-letter
	// subjects are NS_dead.a.b_c and NS_dead.a.b.c.
	require.NoError(t, b.CreateGroup(ctx, "a", "b.c"))
	require.NoError(t, b.CreateGroup(ctx, "a.b", "c"))
	// A consumer of another client on t's stream is no group.
	nc, js := rawClient(t, raw)
	defer nc.Close()
	ns := mustParse(t, raw).Namespace
	_, err = js.CreateConsumer(ctx, ns+"_t", jetstream.ConsumerConfig{Durable: "audit-tool", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)

	for _, p := range []string{"dead 1", "dead 2", "ok", "retry"} {
		require.NoError(t, b.Publish(ctx, "t", &pubsub.Message{ID: p, Payload: []byte(p)}))
	}
	require.NoError(t, b.Publish(ctx, "a", &pubsub.Message{ID: "a-dead", Payload: []byte("dead")}))
	require.NoError(t, b.Publish(ctx, "a.b", pubsub.NewMessage([]byte("waits"))))

	handled := make(chan string, 10)
	h := func(_ context.Context, m *pubsub.Message) error {
		defer func() { handled <- m.ID }()
		switch p := string(m.Payload); {
		case strings.HasPrefix(p, "dead"):
			return pubsub.Permanent(errors.New("bad"))
		case p == "retry":
			return errors.New("later")
		}
		return nil
	}
	opts := []pubsub.SubscribeOption{pubsub.WithConcurrency(1), pubsub.WithBackoff(time.Hour, time.Hour)}
	alpha, err := b.Subscribe(ctx, "t", "alpha", h, opts...)
	require.NoError(t, err)
	bc, err := b.Subscribe(ctx, "a", "b.c", h, opts...)
	require.NoError(t, err)
	seen := map[string]bool{}
	for range 5 {
		seen[recv(t, handled, 10*time.Second)] = true
	}
	assert.Equal(t, map[string]bool{"dead 1": true, "dead 2": true, "ok": true, "retry": true, "a-dead": true}, seen)
	require.NoError(t, alpha.Close()) // the retry waits an hour, acknowledgement pending
	require.NoError(t, bc.Close())

	eventuallyGroups(t, b, "t", []pubsub.GroupInfo{
		{Name: "alpha", Backlog: 1, DeadLetters: 2},
		{Name: "zeta", Backlog: 4, DeadLetters: 0},
	})
	eventuallyGroups(t, b, "a", []pubsub.GroupInfo{{Name: "b.c", Backlog: 0, DeadLetters: 1}})
	eventuallyGroups(t, b, "a.b", []pubsub.GroupInfo{{Name: "c", Backlog: 1, DeadLetters: 0}})

	// A replayed dead letter waits on the group's own subject.
	n, err := b.ReplayDeadLetters(ctx, "t", "alpha", "dead 1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	eventuallyGroups(t, b, "t", []pubsub.GroupInfo{
		{Name: "alpha", Backlog: 2, DeadLetters: 1},
		{Name: "zeta", Backlog: 4, DeadLetters: 0},
	})

	require.NoError(t, b.DeleteGroup(ctx, "t", "zeta"))
	eventuallyGroups(t, b, "t", []pubsub.GroupInfo{{Name: "alpha", Backlog: 2, DeadLetters: 1}})

	_, err = b.ListGroups(ctx, "bad name")
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
}

// TestListGroupsLongNames: a group whose consumer name was shortened is
// listed by its full name, read from the consumer's description.
func TestListGroupsLongNames(t *testing.T) {
	b := openTest(t, testURL(t, ""))
	ctx := context.Background()
	long := strings.Repeat("g-", 100) // encoded 400 bytes: shortened
	require.NotEqual(t, encode(long), consumerName(long))
	require.NoError(t, b.CreateGroup(ctx, "long", long))
	require.NoError(t, b.CreateGroup(ctx, "long", "short"))
	got, err := b.ListGroups(ctx, "long")
	require.NoError(t, err)
	assert.Equal(t, []pubsub.GroupInfo{{Name: long, Backlog: 0, DeadLetters: 0}, {Name: "short", Backlog: 0, DeadLetters: 0}}, got)
}

func TestDecode(t *testing.T) {
	for _, name := range []string{"a", "order-svc", "a.b_c-d", "x__y--z", "-", "_", ".x", strings.Repeat("a-_.", 50)} {
		got, ok := decode(encode(name))
		assert.True(t, ok, name)
		assert.Equal(t, name, got)
	}
	for _, s := range []string{"", "a-", "a-x", "g-own", "x-h0123", "bad~", "a b"} {
		_, ok := decode(s)
		assert.False(t, ok, "%q is no encoding", s)
	}
}
