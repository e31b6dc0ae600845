//go:build natsbacklog

// The backlog measurement publishes a million messages, so it is built only
// with -tags natsbacklog:
//
//	go test -tags natsbacklog -run TestBacklogMemory -v ./transport/nats/
package nats

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestBacklogMemory measures what a group with a million messages waiting
// costs: the stream on the server, the server's memory, and the client's
// memory while a member holds what it fetched ahead (its handlers blocked),
// which must be its prefetch and nothing more.
func TestBacklogMemory(t *testing.T) {
	const n, size, batch = 1_000_000, 256, 1000
	raw := testURL(t, "")
	ns := mustParse(t, raw).Namespace
	ctx := context.Background()
	b := openTest(t, raw)
	require.NoError(t, b.CreateGroup(ctx, "backlog", "g"))
	serverRSS := func() string {
		out, err := exec.Command("ps", "-o", "rss=", "-C", "nats-server").Output()
		if err != nil {
			return "unknown"
		}
		return strings.Join(strings.Fields(string(out)), "+") + " KiB"
	}
	t.Logf("server RSS before: %s", serverRSS())

	start := time.Now()
	payload := make([]byte, size)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				first := next.Add(batch) - batch
				if first >= n {
					return
				}
				msgs := make([]*pubsub.Message, batch)
				for i := range msgs {
					msgs[i] = &pubsub.Message{Payload: payload}
				}
				if err := b.Publish(ctx, "backlog", msgs...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("published %d messages of %d bytes in %v", n, size, time.Since(start).Round(time.Millisecond))

	nc, js := rawClient(t, raw)
	defer nc.Close()
	s, err := js.Stream(ctx, ns+"_backlog")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(n), info.State.Msgs)
	t.Logf("stream: %d messages, %d bytes (%.0f bytes a message); server RSS: %s",
		info.State.Msgs, info.State.Bytes, float64(info.State.Bytes)/float64(n), serverRSS())

	// A member whose handlers block: it holds its prefetch, no more.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	release := make(chan struct{})
	var handling atomic.Int32
	sub, err := b.Subscribe(ctx, "backlog", "g", func(context.Context, *pubsub.Message) error {
		handling.Add(1)
		<-release
		return nil
	}, pubsub.WithConcurrency(10))
	require.NoError(t, err)
	c, err := s.Consumer(ctx, "g")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ci, err := c.Info(ctx)
		return err == nil && ci.NumAckPending == DefaultPrefetch
	}, 30*time.Second, 50*time.Millisecond, "the member holds its prefetch")
	time.Sleep(2 * pullWait) // a member that fetched more would have by now
	ci, err := c.Info(ctx)
	require.NoError(t, err)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("member holding: %d delivered and unsettled (%d in handlers), %d waiting on the server; client heap in use %.1f MiB (%.1f MiB before subscribing); server RSS: %s",
		ci.NumAckPending, handling.Load(), ci.NumPending, float64(ms.HeapInuse)/(1<<20), float64(before)/(1<<20), serverRSS())
	assert.Equal(t, DefaultPrefetch, ci.NumAckPending, "nothing held beyond the prefetch")
	assert.Equal(t, uint64(n-DefaultPrefetch), ci.NumPending)
	assert.Less(t, ms.HeapInuse, uint64(64<<20), "the client does not load the backlog")
	close(release)
	require.NoError(t, sub.Close())
	if os.Getenv("KEEP_BACKLOG") == "" {
		require.NoError(t, js.DeleteStream(ctx, ns+"_backlog"))
	}
}
