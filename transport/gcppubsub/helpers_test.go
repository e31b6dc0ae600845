package gcppubsub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

const waitFor = 10 * time.Second

func subReq(id string) *pb.GetSubscriptionRequest {
	return &pb.GetSubscriptionRequest{Subscription: "projects/" + testProject + "/subscriptions/" + id}
}

// getSub returns the subscription with ID id as the emulator has it.
func getSub(t *testing.T, e *emulator, id string) *pb.Subscription {
	t.Helper()
	s, err := e.GServer.GetSubscription(context.Background(), subReq(id))
	require.NoError(t, err, "subscription %s", id)
	return s
}

// recorder collects handler calls.
type recorder struct {
	mu   sync.Mutex
	got  []*pubsub.Message
	at   []time.Time
	more chan struct{}
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) add(m *pubsub.Message) {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// handler records each call and returns fn's result (nil when fn is nil).
func (r *recorder) handler(fn func(*pubsub.Message) error) pubsub.Handler {
	return func(_ context.Context, m *pubsub.Message) error {
		r.add(m)
		if fn == nil {
			return nil
		}
		return fn(m)
	}
}

// wait waits for n calls and returns them with their times.
func (r *recorder) wait(t *testing.T, n int) ([]*pubsub.Message, []time.Time) {
	t.Helper()
	return r.waitUpTo(t, n, waitFor)
}

// waitDistinct waits until the handler has seen n distinct message IDs
// (repeats aside), or fails t after timeout.
func (r *recorder) waitDistinct(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ids := map[string]bool{}
		for _, m := range r.got {
			ids[m.ID] = true
		}
		more := r.more
		r.mu.Unlock()
		if len(ids) >= n {
			return
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("timed out waiting for %d distinct messages, got %d", n, len(ids))
		}
	}
}

// waitUpTo is wait with a timeout of its own.
func (r *recorder) waitUpTo(t *testing.T, n int, timeout time.Duration) ([]*pubsub.Message, []time.Time) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			defer r.mu.Unlock()
			return append([]*pubsub.Message(nil), r.got...), append([]time.Time(nil), r.at...)
		}
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("timed out waiting for %d handler calls, got %d", n, r.count())
		}
	}
}

func (r *recorder) snapshot() []*pubsub.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*pubsub.Message(nil), r.got...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func subscribe(t *testing.T, b pubsub.Subscriber, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) *pubsub.Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), topic, group, h, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func attempts(ms []*pubsub.Message) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.Attempt
	}
	return out
}

// What the package documentation promises of Ping ("Readiness"): it fails
// within pingDetect of a cut connection and succeeds within pingRecover of
// Pub/Sub being reachable again.
const (
	pingDetect  = 5 * time.Second
	pingRecover = 15 * time.Second
)
