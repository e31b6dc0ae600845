package memory_test

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

func newBroker(t *testing.T, cfg memory.Config) *pubsub.Client {
	t.Helper()
	b, err := memory.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
		panic("unreachable")
	}
}

func TestFullGroupBlocksPublishUntilRoom(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, memory.Config{GroupCapacity: 2})
	require.NoError(t, b.CreateGroup(ctx, "t", "g"))
	require.NoError(t, b.Publish(ctx, "t", pubsub.NewMessage(nil), pubsub.NewMessage(nil)))

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, b.Publish(short, "t", pubsub.NewMessage(nil)), context.DeadlineExceeded, "full group blocks until ctx ends")

	published := make(chan error, 1)
	go func() { published <- b.Publish(ctx, "t", &pubsub.Message{ID: "third"}) }()
	select {
	case err := <-published:
		t.Fatalf("Publish returned %v while the group was full", err)
	case <-time.After(50 * time.Millisecond):
	}
	got := make(chan *pubsub.Message, 3)
	_, err := b.Subscribe(ctx, "t", "g", func(_ context.Context, m *pubsub.Message) error { got <- m; return nil })
	require.NoError(t, err)
	select {
	case err := <-published:
		require.NoError(t, err, "room freed by acks")
	case <-time.After(5 * time.Second):
		t.Fatal("Publish still blocked after the group drained")
	}
	ids := []string{recv(t, got).ID, recv(t, got).ID, recv(t, got).ID}
	assert.Equal(t, "third", ids[2])
}

func TestBatchLargerThanGroupCapacity(t *testing.T) {
	b := newBroker(t, memory.Config{GroupCapacity: 2})
	err := b.Publish(context.Background(), "t", pubsub.NewMessage(nil), pubsub.NewMessage(nil), pubsub.NewMessage(nil))
	assert.ErrorIs(t, err, pubsub.ErrMessageTooLarge)
	assert.Contains(t, err.Error(), "batch of 3 messages is more than a group holds (2)")
}

func TestOversizeErrorNamesTheLimit(t *testing.T) {
	b := newBroker(t, memory.Config{MaxMessageBytes: 10})
	err := b.Publish(context.Background(), "t", &pubsub.Message{ID: "12345", Payload: []byte("123456")})
	require.ErrorIs(t, err, pubsub.ErrMessageTooLarge)
	assert.EqualError(t, err, "pubsub: message 1 of 1 to t: memory: message is 11 bytes, over the limit of 10 (max_message_bytes): pubsub: message too large")
	assert.NoError(t, b.Publish(context.Background(), "t", &pubsub.Message{ID: "12345", Payload: []byte("12345")}), "exactly the limit")
}

func TestNamedHubsShareAndPrivateHubsDoNot(t *testing.T) {
	ctx := context.Background()
	name := "share-" + pubsub.NewID()
	a, b := newBroker(t, memory.Config{Name: name}), newBroker(t, memory.Config{Name: name})
	private := newBroker(t, memory.Config{})
	got := make(chan *pubsub.Message, 2)
	_, err := a.Subscribe(ctx, "t", "g", func(_ context.Context, m *pubsub.Message) error { got <- m; return nil })
	require.NoError(t, err)
	require.NoError(t, private.Publish(ctx, "t", &pubsub.Message{ID: "private"}))
	require.NoError(t, b.Publish(ctx, "t", &pubsub.Message{ID: "shared"}))
	assert.Equal(t, "shared", recv(t, got).ID)

	require.NoError(t, b.Close())
	require.NoError(t, a.Publish(ctx, "t", &pubsub.Message{ID: "after"}), "closing one handle leaves the hub")
	assert.Equal(t, "after", recv(t, got).ID)
}

func TestNamedHubSettingsMustAgree(t *testing.T) {
	name := "cfg-" + pubsub.NewID()
	newBroker(t, memory.Config{Name: name, GroupCapacity: 5})
	_, err := memory.New(memory.Config{Name: name, GroupCapacity: 6})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already exists with other settings")
}

func TestConfigValidateJoinsProblems(t *testing.T) {
	_, err := memory.New(memory.Config{MaxMessageBytes: -1, GroupCapacity: -2})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MaxMessageBytes -1 is negative")
	assert.Contains(t, err.Error(), "GroupCapacity -2 is negative")
}

func TestOpenURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string
	}{
		{"mem://", ""},
		{"mem://orders-hub?group_capacity=10&max_message_bytes=100&dead_letter_capacity=5", ""},
		{"mem://x?capacity=1", `memory: unknown query parameter "capacity" (known: max_message_bytes, group_capacity, dead_letter_capacity)`},
		{"mem://x?group_capacity=ten", `memory: query parameter group_capacity="ten" is not an integer`},
		{"mem://x/path", `memory: URL mem://x/path: a path is not allowed; name the hub as mem://NAME`},
		{"mem:/u:s3cr3t@x", `memory: URL mem:[redacted]: a path is not allowed; name the hub as mem://NAME`}, // found by FuzzOpen
		{"amqp://x", `memory: URL scheme "amqp", want mem`},
		{"mem:orders", `memory: URL mem:orders: want mem://NAME (no user, no opaque part)`},
		{"mem://alice:s3cret@hub", `memory: URL mem://alice:xxxxx@hub: want mem://NAME (no user, no opaque part)`},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			b, err := memory.OpenURL(u)
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.NoError(t, b.Close())
		})
	}
}

func TestKeyHeldBackDuringRetry(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, memory.Config{})
	order := make(chan string, 10)
	_, err := b.Subscribe(ctx, "t", "g", func(_ context.Context, m *pubsub.Message) error {
		order <- m.ID
		if m.ID == "k-1" && m.Attempt == 1 {
			return errors.New("first try fails")
		}
		return nil
	}, pubsub.WithConcurrency(4), pubsub.WithBackoff(20*time.Millisecond, 20*time.Millisecond), pubsub.WithLogger(nil))
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "t",
		&pubsub.Message{ID: "k-1", Key: "k"}, &pubsub.Message{ID: "k-2", Key: "k"}, &pubsub.Message{ID: "other", Key: "o"}))
	var got []string
	for range 4 {
		got = append(got, recv(t, order))
	}
	var keyK []string
	for _, id := range got {
		if id != "other" {
			keyK = append(keyK, id)
		}
	}
	assert.Equal(t, []string{"k-1", "k-1", "k-2"}, keyK, "k-2 waits for k-1's redelivery")
	assert.Contains(t, got, "other", "other keys are not held back")
}

func TestReleasedMessageKeepsItsKeyFirst(t *testing.T) {
	ctx := context.Background()
	name := "release-" + pubsub.NewID()
	a := newBroker(t, memory.Config{Name: name})
	started := make(chan struct{})
	sub, err := a.Subscribe(ctx, "t", "g", func(hctx context.Context, m *pubsub.Message) error {
		close(started)
		<-hctx.Done()
		return hctx.Err()
	}, pubsub.WithConcurrency(1))
	require.NoError(t, err)
	require.NoError(t, a.Publish(ctx, "t", &pubsub.Message{ID: "k-1", Key: "k"}, &pubsub.Message{ID: "k-2", Key: "k"}))
	<-started
	sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, sub.Shutdown(sctx), context.DeadlineExceeded)

	order := make(chan *pubsub.Message, 2)
	_, err = newBroker(t, memory.Config{Name: name}).Subscribe(ctx, "t", "g", func(_ context.Context, m *pubsub.Message) error {
		order <- m
		return nil
	}, pubsub.WithConcurrency(4))
	require.NoError(t, err)
	first, second := recv(t, order), recv(t, order)
	assert.Equal(t, []string{"k-1", "k-2"}, []string{first.ID, second.ID})
	assert.Equal(t, []int{2, 1}, []int{first.Attempt, second.Attempt})
}

// Full dead letters park the message; purging makes room and the parked
// dead letter is stored, without running the handler again.
func TestFullDeadLettersPark(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, memory.Config{DeadLetterCapacity: 1})
	var calls atomic.Int32
	_, err := b.Subscribe(ctx, "t", "g", func(context.Context, *pubsub.Message) error {
		calls.Add(1)
		return pubsub.Permanent(errors.New("no"))
	}, pubsub.WithLogger(nil), pubsub.WithBackoff(5*time.Millisecond, 10*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "t", &pubsub.Message{ID: "first"}))
	require.Eventually(t, func() bool {
		dl, err := b.ListDeadLetters(ctx, "t", "g", 0)
		return err == nil && len(dl) == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, b.Publish(ctx, "t", &pubsub.Message{ID: "second"}))
	require.Eventually(t, func() bool { return calls.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
	dl, err := b.ListDeadLetters(ctx, "t", "g", 0)
	require.NoError(t, err)
	require.Len(t, dl, 1, "full: the second is parked")
	n, err := b.PurgeDeadLetters(ctx, "t", "g", "first")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Eventually(t, func() bool {
		dl, err := b.ListDeadLetters(ctx, "t", "g", 0)
		return err == nil && len(dl) == 1 && dl[0].ID == "second"
	}, 5*time.Second, 5*time.Millisecond, "the parked dead letter is stored once there is room")
	assert.Equal(t, int32(2), calls.Load(), "each message handled once")
}
