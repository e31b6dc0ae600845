//go:build reliability

package nats

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// TestRetryOnIdleGroup: a message handed back with a short delay (what the
// portable layer's backoff does after a failed handler) comes back after
// about that delay, never after AckWait, and exactly once, on a group that
// is otherwise idle: its members' pull requests expire every pullWait, and
// NATS Server 2.9 drops a redelivery that becomes due just as the only
// waiting request expires (see TestServerDropsRedeliveryOnExpiredPull).
// Groups run side by side, each handling one message at a time: the first
// delivery is handed back with a delay of 20–100ms, the second is
// acknowledged. AckWait is 3s; a hand-back that took more than AckWait/2
// or came back as another attempt than 2 (the server's consumer stepped
// back and delivered it as new), or a message delivered again after its
// acknowledgement, fails the test. Before the member waited the delays
// itself on such servers, 7 of the 4800 hand-backs of a run (twice in two
// runs) came back after 1.5s as attempt 1 on NATS Server 2.9.10; after,
// none in three runs (slowest about 200ms). About 25s.
//
//	go test -race -tags reliability -run TestRetryOnIdleGroup -v ./transport/nats/
func TestRetryOnIdleGroup(t *testing.T) {
	const (
		groups  = 16
		rounds  = 300
		ackWait = 3 * time.Second
	)
	raw := testURL(t, "ack_wait=3s")
	cfg := mustParse(t, raw)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	b, err := open(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer b.Close()

	type stats struct {
		handled, late, dupes, reset int
		slowest                     time.Duration
	}
	var (
		mu  sync.Mutex
		all []stats
		wg  sync.WaitGroup
	)
	for gi := range groups {
		wg.Go(func() {
			topic := fmt.Sprintf("idle%d", gi)
			sub, err := b.Subscribe(ctx, topic, "g", driver.SubscribeConfig{Concurrency: 1, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Errorf("subscribe: %v", err)
				return
			}
			defer sub.Close()
			var st stats
			acked := map[string]bool{}
			for r := range rounds {
				id := fmt.Sprintf("%s-%03d", topic, r)
				if err := b.SendBatch(ctx, topic, []*driver.Message{{ID: id}}); err != nil {
					t.Errorf("send: %v", err)
					return
				}
				var back time.Time
				for done := false; !done; {
					rctx, rcancel := context.WithTimeout(ctx, 3*ackWait)
					d, err := sub.Receive(rctx)
					rcancel()
					if err != nil {
						t.Errorf("%s: nothing received within 3×AckWait: %v", id, err)
						return
					}
					m := d.Message()
					switch {
					case acked[m.ID]:
						st.dupes++
						_ = d.Ack(ctx)
					case m.ID != id:
						t.Errorf("unexpected %s (attempt %d) while waiting for %s", m.ID, m.Attempt, id)
						_ = d.Ack(ctx)
					case back.IsZero():
						back = time.Now()
						if err := d.Retry(ctx, time.Duration(20+rand.IntN(80))*time.Millisecond, m.Attempt+1); err != nil {
							t.Errorf("retry: %v", err)
							return
						}
					default:
						if m.Attempt != 2 {
							st.reset++ // delivered again as new: the server dropped the redelivery
						}
						wait := time.Since(back)
						st.slowest = max(st.slowest, wait)
						if wait > ackWait/2 {
							st.late++
						}
						if err := d.Ack(ctx); err != nil {
							t.Errorf("ack: %v", err)
						}
						acked[m.ID] = true
						st.handled++
						done = true
					}
				}
			}
			mu.Lock()
			all = append(all, st)
			mu.Unlock()
		})
	}
	wg.Wait()
	var total stats
	for _, st := range all {
		total.handled += st.handled
		total.late += st.late
		total.dupes += st.dupes
		total.reset += st.reset
		total.slowest = max(total.slowest, st.slowest)
	}
	t.Logf("%d groups × %d hand-backs: handled %d, back after more than AckWait/2: %d, back with an attempt other than 2: %d, delivered again after acknowledgement: %d, slowest hand-back %v",
		groups, rounds, total.handled, total.late, total.reset, total.dupes, total.slowest.Round(time.Millisecond))
	assert.Equal(t, groups*rounds, total.handled)
	assert.Zero(t, total.late, "hand-backs that came back after about AckWait")
	assert.Zero(t, total.reset, "hand-backs that came back as a new message (attempt 1), not as attempt 2")
	assert.Zero(t, total.dupes, "messages delivered again after their acknowledgement")
}
