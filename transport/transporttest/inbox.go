package transporttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// quietPeriod is how long the suite waits to see that nothing more arrives.
const quietPeriod = 300 * time.Millisecond

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// topicName returns a topic name unique to this run of t, readable in the
// broker's listings.
func topicName(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return fmt.Sprintf("sytest-%s-%s", name, hex.EncodeToString(b[:]))
}

// delivery is one handler call as the suite saw it.
type delivery struct {
	msg    *pubsub.Message
	at     time.Time
	member int
}

// inbox records what handlers received and lets a test wait for it.
type inbox struct {
	mu     sync.Mutex
	got    []delivery
	notify chan struct{}
}

func newInbox() *inbox { return &inbox{notify: make(chan struct{}, 1)} }

func (in *inbox) add(member int, m *pubsub.Message) {
	in.mu.Lock()
	in.got = append(in.got, delivery{msg: m, at: time.Now(), member: member})
	in.mu.Unlock()
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// handler records every message and acks it.
func (in *inbox) handler(member int) pubsub.Handler {
	return func(_ context.Context, m *pubsub.Message) error {
		in.add(member, m)
		return nil
	}
}

func (in *inbox) snapshot() []delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]delivery(nil), in.got...)
}

// waitN waits until at least n deliveries arrived, failing t after timeout.
func (in *inbox) waitN(t *testing.T, n int, timeout time.Duration) []delivery {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := in.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-in.notify:
		case <-deadline:
			got := in.snapshot()
			require.FailNowf(t, "timed out", "waited %v for %d deliveries, got %d: %v", timeout, n, len(got), ids(got))
		}
	}
}

// quiet waits d and returns everything delivered by then: for checking that
// nothing more arrives.
func (in *inbox) quiet(d time.Duration) []delivery {
	time.Sleep(d)
	return in.snapshot()
}

func ids(ds []delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.msg.ID
	}
	sort.Strings(out)
	return out
}

// distinct returns sorted ids without repeats.
func distinct(sorted []string) []string {
	return slices.Compact(slices.Clone(sorted))
}

func msgIDs(ms []*pubsub.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	sort.Strings(out)
	return out
}

// newMessages returns n messages with IDs prefix-0 ... prefix-(n-1).
func newMessages(prefix string, n int) []*pubsub.Message {
	ms := make([]*pubsub.Message, n)
	for i := range ms {
		ms[i] = &pubsub.Message{ID: fmt.Sprintf("%s-%d", prefix, i), Payload: fmt.Appendf(nil, "payload %d", i)}
	}
	return ms
}

// subscribe subscribes and fails t on error; the subscription closes with t.
func subscribe(t *testing.T, ctx context.Context, b pubsub.Subscriber, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) *pubsub.Subscription {
	t.Helper()
	sub, err := b.Subscribe(ctx, topic, group, h, opts...)
	require.NoError(t, err, "Subscribe(%s, %s)", topic, group)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}
