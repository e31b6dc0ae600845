package nats

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// A member that dies holding a message (here a raw client that fetches it
// and never settles it) costs one attempt: after AckWait the next member
// gets Attempt 2.
func TestCrashRedeliveryCountsOne(t *testing.T) {
	raw := testURL(t, "ack_wait=1s")
	ns := mustParse(t, raw).Namespace
	b := openTest(t, raw)
	ctx := context.Background()
	require.NoError(t, b.CreateGroup(ctx, "jobs", "workers"))
	require.NoError(t, b.Publish(ctx, "jobs", &pubsub.Message{ID: "job-1"}))

	nc, js := rawClient(t, raw)
	c, err := js.Consumer(ctx, ns+"_jobs", "workers")
	require.NoError(t, err)
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	require.NoError(t, err)
	md, err := m.Metadata()
	require.NoError(t, err)
	require.Equal(t, uint64(1), md.NumDelivered)
	nc.Close() // crashed, holding job-1

	got := make(chan *pubsub.Message, 2)
	_, err = b.Subscribe(ctx, "jobs", "workers", func(_ context.Context, m *pubsub.Message) error {
		got <- m
		return nil
	})
	require.NoError(t, err)
	m2 := recv(t, got, 10*time.Second)
	assert.Equal(t, "job-1", m2.ID)
	assert.Equal(t, 2, m2.Attempt, "the crashed delivery counts one attempt")
}

// A handler that runs longer than AckWait keeps its message: the member
// reports progress, so the server does not deliver it to another member
// meanwhile.
func TestLongHandlerKeepsItsMessage(t *testing.T) {
	raw := testURL(t, "ack_wait=1s")
	a, b := openTest(t, raw), openTest(t, raw)
	ctx := context.Background()
	var runs atomic.Int32
	done := make(chan struct{})
	handler := func(_ context.Context, m *pubsub.Message) error {
		if runs.Add(1) == 1 {
			time.Sleep(2500 * time.Millisecond) // 2.5 × AckWait
			close(done)
		}
		return nil
	}
	_, err := a.Subscribe(ctx, "slow", "g", handler, pubsub.WithConcurrency(1))
	require.NoError(t, err)
	_, err = b.Subscribe(ctx, "slow", "g", handler, pubsub.WithConcurrency(1))
	require.NoError(t, err)
	require.NoError(t, a.Publish(ctx, "slow", &pubsub.Message{ID: "long"}))
	recv(t, done, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // longer than AckWait: a lost message would be back by now
	assert.Equal(t, int32(1), runs.Load(), "handled once, by one member")
}

// The Attempt is exact however the message goes back: a failure counts
// one (negative acknowledgement with delay), a run cut off by Shutdown's
// deadline counts one (a copy on the group's subject), a release by a
// stopping handler counts none (a copy again, of a copy this time).
func TestAttemptsAcrossHandBacks(t *testing.T) {
	raw := testURL(t, "")
	ctx := context.Background()
	attempts := make(chan int, 10)
	cutOff := make(chan struct{})
	first, err := openTest(t, raw).Subscribe(ctx, "hb", "g", func(hctx context.Context, m *pubsub.Message) error {
		attempts <- m.Attempt
		if m.Attempt == 1 {
			return errors.New("fail once")
		}
		close(cutOff)
		<-hctx.Done()
		return hctx.Err()
	}, pubsub.WithBackoff(10*time.Millisecond, 20*time.Millisecond), pubsub.WithConcurrency(1))
	require.NoError(t, err)
	require.NoError(t, openTest(t, raw).Publish(ctx, "hb", &pubsub.Message{ID: "m"}))
	recv(t, cutOff, 10*time.Second)
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, first.Shutdown(sctx), context.DeadlineExceeded)

	var second *pubsub.Subscription
	took, assigned := make(chan struct{}), make(chan struct{})
	second, err = openTest(t, raw).Subscribe(ctx, "hb", "g", func(hctx context.Context, m *pubsub.Message) error {
		attempts <- m.Attempt
		close(took)
		<-assigned
		<-second.Stopping()
		return fmt.Errorf("stopping: %w", pubsub.ErrClosed)
	}, pubsub.WithConcurrency(1))
	require.NoError(t, err)
	close(assigned)
	recv(t, took, 10*time.Second)
	require.NoError(t, second.Close())

	_, err = openTest(t, raw).Subscribe(ctx, "hb", "g", func(_ context.Context, m *pubsub.Message) error {
		attempts <- m.Attempt
		return nil
	})
	require.NoError(t, err)
	var got []int
	for range 4 {
		got = append(got, recv(t, attempts, 10*time.Second))
	}
	assert.Equal(t, []int{1, 2, 3, 3}, got)
	select {
	case a := <-attempts:
		t.Errorf("one delivery more, attempt %d", a)
	case <-time.After(300 * time.Millisecond):
	}
}
