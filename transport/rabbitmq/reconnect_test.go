package rabbitmq

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/internal/testnet"
	"github.com/switchyard-go/switchyard/pubsub"
)

// newLoggedClient opens a client on rawURL whose logs go to the returned
// buffer.
func newLoggedClient(t *testing.T, rawURL string) (*pubsub.Client, *testlog.Buffer) {
	t.Helper()
	logger, logs := bufferLogger()
	return openTest(t, rawURL, pubsub.WithLogger(logger)), logs
}

// TestOutage: while the broker is unreachable, Publish waits and succeeds
// once the connection is back; subscriptions resume; Ping reports the
// outage; logs never show the password.
func TestOutage(t *testing.T) {
	ctx := testCtx(t)
	p, viaProxy := newProxy(t, testURL(t, ""))
	topic := uniqueTopic(t, "g")
	b, logs := newLoggedClient(t, viaProxy)
	c := newCollector()
	subscribe(t, ctx, b, topic, "g", c.handler)
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "before"}))
	c.waitN(t, 1)
	require.NoError(t, b.Ping(ctx))
	time.Sleep(100 * time.Millisecond) // let the ack of "before" reach the broker

	p.SetDown(true)
	p.Cut()
	require.Eventually(t, func() bool { return b.Ping(ctx) != nil }, 5*time.Second, 10*time.Millisecond, "Ping reports the outage")

	published := make(chan error, 1)
	go func() {
		published <- b.Publish(ctx, topic, &pubsub.Message{ID: "during-1"}, &pubsub.Message{ID: "during-2"})
	}()
	select {
	case err := <-published:
		t.Fatalf("Publish returned %v while the broker was unreachable", err)
	case <-time.After(time.Second):
	}
	p.SetDown(false)
	select {
	case err := <-published:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatal("Publish did not return after the broker came back")
	}
	calls := c.waitN(t, 3)
	assert.Equal(t, []string{"before", "during-1", "during-2"}, gotIDs(calls))
	require.Eventually(t, func() bool { return b.Ping(ctx) == nil }, 5*time.Second, 10*time.Millisecond)

	out := logs.String()
	assert.Contains(t, out, "connection lost")
	assert.Contains(t, out, "connection restored")
	for _, name := range []string{"publish", "consume", "admin"} {
		assert.Contains(t, out, "connection="+name, "the %s connection's events go to the client's logger", name)
	}
	assert.NotContains(t, out, "guest")
}

// TestPublishTimeoutDuringOutage: a Publish that cannot get its confirm
// within confirm_timeout fails, saying so; the caller's context error comes
// back unwrapped.
func TestPublishTimeoutDuringOutage(t *testing.T) {
	ctx := testCtx(t)
	p, viaProxy := newProxy(t, testURL(t, "confirm_timeout=500ms"))
	topic := uniqueTopic(t)
	b, _ := newLoggedClient(t, viaProxy)
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "ok"}))
	p.SetDown(true)
	p.Cut()
	defer p.SetDown(false)

	start := time.Now()
	err := b.Publish(ctx, topic, &pubsub.Message{ID: "late"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "confirm timeout")
	assert.Less(t, time.Since(start), 3*time.Second)

	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = b.Publish(cctx, topic, &pubsub.Message{ID: "cancelled"})
	assert.Equal(t, context.DeadlineExceeded, err, "the caller's context error, unwrapped")
}

// TestOpenUnreachable: Open fails within a bounded time, naming host:port
// and never the password.
func TestOpenUnreachable(t *testing.T) {
	const password = "Sup3r-s3cret"
	// A port nobody listens on: refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	require.NoError(t, ln.Close())

	// A listener that accepts and never speaks AMQP: the handshake times out.
	silent, err := testnet.NewSilent()
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })

	open := func(ctx context.Context, rawURL string) (time.Duration, error) {
		u, err := url.Parse(rawURL)
		require.NoError(t, err)
		start := time.Now()
		b, err := OpenURL(ctx, u, pubsub.WithLogger(testLogger()))
		if b != nil {
			_ = b.Close()
		}
		return time.Since(start), err
	}

	t.Run("refused", func(t *testing.T) {
		took, err := open(context.Background(), "amqp://user:"+password+"@"+refused+"/")
		require.Error(t, err)
		assert.Contains(t, err.Error(), refused)
		assert.NotContains(t, err.Error(), password)
		assert.Less(t, took, 2*time.Second)
	})
	t.Run("silent within connect_timeout", func(t *testing.T) {
		took, err := open(context.Background(), "amqp://user:"+password+"@"+silent.Addr()+"/?connect_timeout=300ms")
		require.Error(t, err)
		assert.Contains(t, err.Error(), silent.Addr())
		assert.Contains(t, err.Error(), "connect timeout")
		assert.NotContains(t, err.Error(), password)
		assert.GreaterOrEqual(t, took, 300*time.Millisecond)
		assert.Less(t, took, 2*time.Second)
	})
	t.Run("silent, context ends first", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		took, err := open(ctx, "amqp://user:"+password+"@"+silent.Addr()+"/")
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.Less(t, took, 2*time.Second)
	})
	t.Run("wrong password", func(t *testing.T) {
		u, err := url.Parse(testURL(t, ""))
		require.NoError(t, err)
		u.User = url.UserPassword("guest", password)
		_, err = open(context.Background(), u.String())
		require.Error(t, err)
		assert.Contains(t, err.Error(), u.Host)
		assert.NotContains(t, err.Error(), password)
	})
	t.Run("default connect timeout is bounded", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits the default 10s connect timeout")
		}
		took, err := open(context.Background(), "amqp://user:"+password+"@"+silent.Addr()+"/")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no connection within 10s")
		assert.Less(t, took, 12*time.Second)
	})
}

// TestClosedBroker: a Shutdown whose deadline passes while a Publish waits
// on an outage closes the connections, which fails that Publish with
// ErrClosed; every call afterwards returns ErrClosed.
func TestClosedBroker(t *testing.T) {
	ctx := testCtx(t)
	p, viaProxy := newProxy(t, testURL(t, ""))
	topic := uniqueTopic(t)
	b, _ := newLoggedClient(t, viaProxy)
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "ok"}))
	p.SetDown(true)
	p.Cut()
	defer p.SetDown(false)
	waiting := make(chan error, 1)
	go func() { waiting <- b.Publish(ctx, topic, &pubsub.Message{ID: "waits"}) }()
	time.Sleep(200 * time.Millisecond) // the Publish is waiting for the connection
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, b.Shutdown(sctx), context.DeadlineExceeded, "the waiting Publish held up the shutdown")
	select {
	case err := <-waiting:
		assert.ErrorIs(t, err, pubsub.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not release a waiting Publish")
	}
	assert.ErrorIs(t, b.Publish(ctx, topic, &pubsub.Message{}), pubsub.ErrClosed)
	assert.ErrorIs(t, b.CreateGroup(ctx, topic, "g"), pubsub.ErrClosed)
	assert.ErrorIs(t, b.Ping(ctx), pubsub.ErrClosed)
	_, err := b.Subscribe(ctx, topic, "g", func(context.Context, *pubsub.Message) error { return nil })
	assert.ErrorIs(t, err, pubsub.ErrClosed)
	_, err = b.ListDeadLetters(ctx, topic, "g", 0)
	assert.ErrorIs(t, err, pubsub.ErrClosed)
	assert.ErrorIs(t, b.Close(), context.DeadlineExceeded, "Close returns the first Shutdown's result")
}

// TestBrokerClosesChannel: a message the broker refuses by closing the
// channel (here: over its max_message_size, which the Broker was told is
// larger) fails that Publish only; the next Publish works.
func TestBrokerClosesChannel(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes a message over RabbitMQ's 128 MiB default limit")
	}
	ctx := testCtx(t)
	topic := uniqueTopic(t, "g")
	b := openTest(t, testURL(t, "max_message_bytes=268435456"))
	require.NoError(t, b.CreateGroup(ctx, topic, "g"))
	err := b.Publish(ctx, topic, &pubsub.Message{ID: "big", Payload: make([]byte, 128<<20+1)})
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.DeadlineExceeded), "refused, not timed out: %v", err)
	assert.True(t, strings.Contains(err.Error(), "PRECONDITION_FAILED") || strings.Contains(err.Error(), "406"), err.Error())
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "small"}))
}

// TestReconnectKeepsBatchOrder: when the connection is lost while a batch
// is being written, the batch's messages whose confirmation was lost and
// those not written yet are published again on the next connection, in the
// batch's order. (Before, the tail that was never written went out first,
// ahead of the earlier unconfirmed messages.)
func TestReconnectKeepsBatchOrder(t *testing.T) {
	ctx := testCtx(t)
	p, viaProxy := newProxy(t, testURL(t, ""))
	topic := uniqueTopic(t, "g")
	c := openTest(t, viaProxy)
	require.NoError(t, c.CreateGroup(ctx, topic, "g"))
	const n, cutAt = 200, 100
	var (
		once        sync.Once
		unconfirmed atomic.Bool
	)
	testHookPublished = func(i int, dc *amqp.DeferredConfirmation) {
		if i != cutAt-1 {
			return
		}
		once.Do(func() {
			select {
			case <-dc.Done():
			default:
				unconfirmed.Store(true)
			}
			p.Cut()
		})
	}
	t.Cleanup(func() { testHookPublished = nil })
	msgs := newMessages("o", n)
	require.NoError(t, c.Publish(ctx, topic, msgs...))
	testHookPublished = nil
	require.True(t, unconfirmed.Load(), "message %d was not confirmed when the connection was cut", cutAt-1)

	ds := getAll(t, groupQueueName(topic, "g"))
	last := map[string]int{} // each ID's last place in the queue
	for pos, d := range ds {
		last[d.MessageId] = pos
	}
	require.Len(t, last, n, "every message is in the queue")
	for i := 1; i < n; i++ {
		assert.Less(t, last[msgs[i-1].ID], last[msgs[i].ID], "%s is published (again) before %s", msgs[i-1].ID, msgs[i].ID)
	}
	t.Logf("%d messages in the queue for %d published: %d published twice", len(ds), n, len(ds)-n)
}
