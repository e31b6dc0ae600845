package transporttest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// outcomeLog records what an Observer is told.
type outcomeLog struct {
	mu       sync.Mutex
	received []string // message IDs
	settled  []pubsub.Settlement
	notify   chan struct{}
}

func newOutcomeLog() *outcomeLog { return &outcomeLog{notify: make(chan struct{}, 1)} }

type ctxKey struct{}

func (l *outcomeLog) observer() pubsub.Observer {
	return pubsub.Observer{
		OnReceive: func(ctx context.Context, d pubsub.Delivery) context.Context {
			l.mu.Lock()
			l.received = append(l.received, d.Message.ID)
			l.mu.Unlock()
			return context.WithValue(ctx, ctxKey{}, d.Message.ID)
		},
		OnSettle: func(ctx context.Context, st pubsub.Settlement) {
			if v, ok := ctx.Value(ctxKey{}).(string); ok && v != st.Message.ID {
				st.Err = errors.New("OnSettle got another delivery's context")
			}
			l.mu.Lock()
			l.settled = append(l.settled, st)
			l.mu.Unlock()
			select {
			case l.notify <- struct{}{}:
			default:
			}
		},
	}
}

func (l *outcomeLog) waitN(t *testing.T, n int, timeout time.Duration) []pubsub.Settlement {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		got := append([]pubsub.Settlement(nil), l.settled...)
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-l.notify:
		case <-deadline:
			require.FailNowf(t, "timed out", "waited for %d outcomes, got %d", n, len(got))
		}
	}
}

// testObserver: an Observer given to the broker is told the real outcome of
// each delivery by the loop: acked, retried with its delay, dead-lettered,
// released untouched at a stop; OnSettle gets OnReceive's context.
func (s *suite) testObserver(t *testing.T) {
	ctx := s.ctx(t)
	log := newOutcomeLog()
	b := s.h.NewBroker(t, pubsub.WithObserver(log.observer()))
	topic := topicName(t)
	sub := subscribe(t, ctx, b, topic, "g", func(_ context.Context, m *pubsub.Message) error {
		switch {
		case m.ID == "ok":
			return nil
		case m.ID == "flaky" && m.Attempt == 1:
			return errors.New("flaky")
		case m.ID == "flaky":
			return nil
		}
		return pubsub.Permanent(errors.New("bad"))
	}, pubsub.WithBackoff(20*time.Millisecond, 40*time.Millisecond), pubsub.WithConcurrency(1))
	for _, id := range []string{"ok", "flaky", "bad"} {
		require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: id}))
	}
	got := log.waitN(t, 4, s.h.Timeout)
	byID := map[string][]pubsub.Settlement{}
	for _, st := range got {
		assert.NoError(t, st.Err, "%s", st.Message.ID)
		assert.Equal(t, topic, st.Topic)
		assert.Equal(t, "g", st.Group)
		byID[st.Message.ID] = append(byID[st.Message.ID], st)
	}
	require.Len(t, byID["ok"], 1)
	assert.Equal(t, pubsub.OutcomeAcked, byID["ok"][0].Outcome)
	require.Len(t, byID["flaky"], 2)
	assert.Equal(t, pubsub.OutcomeRetried, byID["flaky"][0].Outcome)
	assert.EqualError(t, byID["flaky"][0].Cause, "flaky")
	assert.GreaterOrEqual(t, byID["flaky"][0].Delay, 10*time.Millisecond)
	assert.LessOrEqual(t, byID["flaky"][0].Delay, 20*time.Millisecond)
	assert.Equal(t, pubsub.OutcomeAcked, byID["flaky"][1].Outcome)
	require.Len(t, byID["bad"], 1)
	assert.Equal(t, pubsub.OutcomeDeadLettered, byID["bad"][0].Outcome)
	assert.True(t, pubsub.IsPermanent(byID["bad"][0].Cause))
	log.mu.Lock()
	assert.Len(t, log.received, 4, "OnReceive once per handler run")
	log.mu.Unlock()
	require.NoError(t, sub.Close())
}

// testMiddleware: broker middleware runs outside subscription middleware,
// each in the order given, around the handler.
func (s *suite) testMiddleware(t *testing.T) {
	ctx := s.ctx(t)
	var mu sync.Mutex
	var trail []string
	mark := func(name string) pubsub.Middleware {
		return func(next pubsub.Handler) pubsub.Handler {
			return func(ctx context.Context, m *pubsub.Message) error {
				mu.Lock()
				trail = append(trail, name)
				mu.Unlock()
				return next(ctx, m)
			}
		}
	}
	b := s.h.NewBroker(t, pubsub.WithMiddleware(mark("broker-1"), mark("broker-2")))
	topic := topicName(t)
	in := newInbox()
	subscribe(t, ctx, b, topic, "g", func(ctx context.Context, m *pubsub.Message) error {
		mu.Lock()
		trail = append(trail, "handler")
		mu.Unlock()
		return in.handler(0)(ctx, m)
	}, pubsub.WithMiddleware(mark("sub")))
	require.NoError(t, b.Publish(ctx, topic, &pubsub.Message{ID: "m"}))
	in.waitN(t, 1, s.h.Timeout)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"broker-1", "broker-2", "sub", "handler"}, trail)
}
