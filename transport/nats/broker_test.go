package nats

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Full dead letters park the message; purging makes room and the parked
// dead letter is stored, without running the handler again.
func TestFullDeadLettersPark(t *testing.T) {
	raw := testURL(t, "dead_letter_max=1")
	b := openTest(t, raw)
	ctx := context.Background()
	var calls atomic.Int32
	parked := make(chan struct{}, 10)
	_, err := b.Subscribe(ctx, "t", "g", func(context.Context, *pubsub.Message) error {
		calls.Add(1)
		return pubsub.Permanent(errors.New("no"))
	}, pubsub.WithBackoff(5*time.Millisecond, 10*time.Millisecond), pubsub.WithObserver(pubsub.Observer{
		OnSettle: func(_ context.Context, st pubsub.Settlement) {
			if st.Outcome == pubsub.OutcomeParked {
				parked <- struct{}{}
			}
		},
	}))
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "t", &pubsub.Message{ID: "first"}))
	waitDeadLetters(t, b, "t", "g", 1)
	require.NoError(t, b.Publish(ctx, "t", &pubsub.Message{ID: "second"}))
	recv(t, parked, 10*time.Second)
	assert.Equal(t, int32(2), calls.Load())
	n, err := b.PurgeDeadLetters(ctx, "t", "g", "first")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	dls := waitDeadLetters(t, b, "t", "g", 1)
	assert.Equal(t, "second", dls[0].ID)
	assert.Equal(t, int32(2), calls.Load(), "the parked message's handler did not run again")
}

// waitDeadLetters polls the group's dead letters until there are n.
func waitDeadLetters(t *testing.T, b *pubsub.Client, topic, group string, n int) []*pubsub.Message {
	t.Helper()
	var got []*pubsub.Message
	require.Eventually(t, func() bool {
		var err error
		got, err = b.ListDeadLetters(context.Background(), topic, group, 0)
		require.NoError(t, err)
		return len(got) == n
	}, 10*time.Second, 20*time.Millisecond, "dead letters of %s/%s", topic, group)
	return got
}

// Without max_message_bytes the limit is the server's max_payload less
// HeaderRoom, headers included; more than that is refused at Open.
func TestSizeLimitFromServer(t *testing.T) {
	raw := testURL(t, "")
	b := openTest(t, raw)
	var nc *natsgo.Conn
	require.True(t, b.As(&nc))
	limit := int(nc.MaxPayload()) - HeaderRoom
	ctx := context.Background()
	require.NoError(t, b.CreateGroup(ctx, "big", "g"))
	headers := len("NATS/1.0\r\n\r\n") + len("Nats-Msg-Id: big\r\n")
	fits := &pubsub.Message{ID: "big", Payload: bytes.Repeat([]byte{'x'}, limit-headers)}
	require.NoError(t, b.Publish(ctx, "big", fits), "exactly the limit")
	fits.Payload = append(fits.Payload, 'x')
	assert.ErrorIs(t, b.Publish(ctx, "big", fits), pubsub.ErrMessageTooLarge)

	// A message at the limit can be dead-lettered, with the longest reason:
	// its dead-letter headers fit in the room left.
	_, err := b.Subscribe(ctx, "big", "g", func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New(strings.Repeat("a very long reason\n", 100)))
	})
	require.NoError(t, err)
	dls := waitDeadLetters(t, b, "big", "g", 1)
	assert.Equal(t, "big", dls[0].ID)
	assert.Len(t, dls[0].Payload, limit-headers)
	assert.Len(t, dls[0].Metadata[pubsub.MetadataDeadLetterReason], pubsub.MaxDeadLetterReason)

	u, err := url.Parse(raw + "&max_message_bytes=" + strconv.Itoa(limit+1))
	require.NoError(t, err)
	_, err = OpenURL(ctx, u)
	assert.ErrorContains(t, err, "is more than the server's max_payload")
}

// The URL's limits and replicas are the created streams' settings.
func TestStreamSettingsByURL(t *testing.T) {
	raw := testURL(t, "replicas=1&storage=memory&max_age=1h&max_bytes=1000000&max_msgs=1000&duplicate_window=30s&ack_wait=5s&max_ack_pending=7&dead_letter_max=3")
	ns := mustParse(t, raw).Namespace
	b := openTest(t, raw)
	ctx := context.Background()
	_, err := b.Subscribe(ctx, "cfg", "g", func(context.Context, *pubsub.Message) error {
		return pubsub.Permanent(errors.New("x"))
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "cfg", &pubsub.Message{ID: "m"}))
	waitDeadLetters(t, b, "cfg", "g", 1)

	nc, js := rawClient(t, raw)
	defer nc.Close()
	s, err := js.Stream(ctx, ns+"_cfg")
	require.NoError(t, err)
	c := s.CachedInfo().Config
	assert.Equal(t, []string{ns + ".cfg", ns + "_group.cfg.*"}, c.Subjects)
	want := jetstream.InterestPolicy
	if !interestRetentionSafe(nc.ConnectedServerVersion()) {
		want = jetstream.LimitsPolicy // NATS Server 2.9: see the package documentation
	}
	assert.Equal(t, want, c.Retention)
	assert.Equal(t, jetstream.DiscardNew, c.Discard)
	assert.Equal(t, jetstream.MemoryStorage, c.Storage)
	assert.Equal(t, 1, c.Replicas)
	assert.Equal(t, time.Hour, c.MaxAge)
	assert.Equal(t, int64(1000000), c.MaxBytes)
	assert.Equal(t, int64(1000), c.MaxMsgs)
	assert.Equal(t, 30*time.Second, c.Duplicates)
	for name, filter := range map[string]string{"g": ns + ".cfg", "g-own": ns + "_group.cfg.g"} {
		cons, err := s.Consumer(ctx, name)
		require.NoError(t, err)
		cc := cons.CachedInfo().Config
		assert.Equal(t, filter, cc.FilterSubject, name)
		assert.Equal(t, 5*time.Second, cc.AckWait, name)
		assert.Equal(t, 7, cc.MaxAckPending, name)
		assert.Equal(t, -1, cc.MaxDeliver, name)
		assert.Equal(t, jetstream.AckExplicitPolicy, cc.AckPolicy, name)
	}
	dl, err := js.Stream(ctx, ns+"-deadletters")
	require.NoError(t, err)
	dc := dl.CachedInfo().Config
	assert.Equal(t, []string{ns + "_dead.>"}, dc.Subjects)
	assert.Equal(t, int64(3), dc.MaxMsgsPerSubject)
	assert.True(t, dc.DiscardNewPerSubject)
	assert.Equal(t, jetstream.DiscardNew, dc.Discard)
	assert.Equal(t, jetstream.LimitsPolicy, dc.Retention)
}

// A full stream does not drop: Publish waits for room, then fails with the
// messages not stored.
func TestFullStreamFailsPublish(t *testing.T) {
	raw := testURL(t, "max_msgs=2&request_timeout=1s")
	b := openTest(t, raw)
	ctx := context.Background()
	require.NoError(t, b.CreateGroup(ctx, "full", "g"))
	require.NoError(t, b.Publish(ctx, "full", &pubsub.Message{ID: "1"}, &pubsub.Message{ID: "2"}))
	start := time.Now()
	err := b.Publish(ctx, "full", &pubsub.Message{ID: "3"}, &pubsub.Message{ID: "4"})
	var pe *pubsub.PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []string{"3", "4"}, pe.IDs)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "maximum messages exceeded")
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "waited for room until request_timeout")

	// Room made by the group lets publishing go on.
	got := make(chan string, 4)
	_, err = b.Subscribe(ctx, "full", "g", func(_ context.Context, m *pubsub.Message) error { got <- m.ID; return nil })
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"1", "2"}, []string{recv(t, got, 5*time.Second), recv(t, got, 5*time.Second)})
	require.Eventually(t, func() bool {
		return b.Publish(ctx, "full", &pubsub.Message{ID: "5"}) == nil
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, "5", recv(t, got, 5*time.Second))
}

// Names of 200 bytes, shortened with a hash where the server's limits
// require, work end to end; topics that would make an empty subject token
// are refused before any I/O.
func TestLongAndOddNames(t *testing.T) {
	raw := testURL(t, "")
	b := openTest(t, raw)
	ctx := context.Background()
	topic := strings.Repeat("t-", pubsub.MaxNameLength/2)
	group := strings.Repeat("g_", pubsub.MaxNameLength/2)
	got := make(chan string, 1)
	_, err := b.Subscribe(ctx, topic, group, func(_ context.Context, m *pubsub.Message) error { got <- m.ID; return nil })
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "long"}))
	assert.Equal(t, "long", recv(t, got, 10*time.Second))
	for _, bad := range []string{".a", "a.", "a..b"} {
		assert.ErrorIs(t, b.Publish(ctx, bad, pubsub.NewMessage(nil)), pubsub.ErrInvalidTopic, bad)
		_, err := b.Subscribe(ctx, bad, "g", func(context.Context, *pubsub.Message) error { return nil })
		assert.ErrorIs(t, err, pubsub.ErrInvalidTopic, bad)
	}
}

// DeleteGroup removes both consumers, the group's own messages and its
// dead letters; other groups keep theirs.
func TestDeleteGroupRemovesItsObjects(t *testing.T) {
	raw := testURL(t, "")
	ns := mustParse(t, raw).Namespace
	b := openTest(t, raw)
	ctx := context.Background()
	fail := func(context.Context, *pubsub.Message) error { return pubsub.Permanent(errors.New("x")) }
	for _, g := range []string{"a", "b"} {
		sub, err := b.Subscribe(ctx, "del", g, fail)
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Close() })
	}
	require.NoError(t, b.Publish(ctx, "del", &pubsub.Message{ID: "m"}))
	waitDeadLetters(t, b, "del", "a", 1)
	waitDeadLetters(t, b, "del", "b", 1)
	require.NoError(t, b.DeleteGroup(ctx, "del", "a"))

	nc, js := rawClient(t, raw)
	defer nc.Close()
	s, err := js.Stream(ctx, ns+"_del")
	require.NoError(t, err)
	for _, name := range []string{"a", "a-own"} {
		_, err := s.Consumer(ctx, name)
		assert.ErrorIs(t, err, jetstream.ErrConsumerNotFound, name)
	}
	dl, err := js.Stream(ctx, ns+"-deadletters")
	require.NoError(t, err)
	info, err := dl.Info(ctx, jetstream.WithSubjectFilter(ns+"_dead.del.>"))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{ns + "_dead.del.b": 1}, info.State.Subjects)
	_, err = b.ListDeadLetters(ctx, "del", "a", 0)
	assert.ErrorIs(t, err, pubsub.ErrNotFound)
}

// Open fails at once for an unreachable server, naming it and not the
// password or token.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, raw := range []string{"nats://alice:s3cret@127.0.0.1:1?connect_timeout=2s", "nats://s3cret@127.0.0.1:1"} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		start := time.Now()
		b, err := OpenURL(ctx, u)
		require.Error(t, err)
		assert.Nil(t, b)
		assert.Contains(t, err.Error(), "127.0.0.1:1")
		assert.NotContains(t, err.Error(), "s3cret")
		assert.Less(t, time.Since(start), 5*time.Second)
	}
}

// After Close, Ping and every call report ErrClosed; Ping works before.
func TestPingAndClose(t *testing.T) {
	raw := testURL(t, "")
	b := openTest(t, raw)
	ctx := context.Background()
	require.NoError(t, b.Ping(ctx))
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Ping(ctx), pubsub.ErrClosed)
}
