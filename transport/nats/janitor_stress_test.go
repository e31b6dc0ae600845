//go:build reliability

package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// TestSweepStress runs the janitor's sweep in a tight loop on a
// limits-retention stream (what the broker creates on NATS Server 2.9)
// while a publisher sends continuously and two groups consume: "retry"
// hands every message back once with a delay (a negative acknowledgement
// with delay, as the portable layer's backoff does) and acknowledges its
// second delivery; "ack" acknowledges at once. Every published message
// must be handled to completion by both groups (exact IDs): a sweep that
// purged a message a group had not received, or had handed back, loses
// it. AckWait is short (3s) so that the members' progress reports (every
// AckWait/3) run often. The time from a hand-back to the next delivery is
// logged, not asserted: on NATS Server 2.9, where a member waits short
// delays itself and hands the message back on the group's own subject
// (see Retry), the 4000 hand-backs of this flood queue behind new
// messages (the own subject gets the member's concurrency, the topic its
// prefetch), and most take 1.5 to 3s; with NakWithDelay the server sends
// redeliveries first and they take under 1s. TestRetryOnIdleGroup
// asserts the delay of hand-backs on an idle group.
//
//	go test -race -tags reliability -run 'TestSweepStress' ./transport/nats/
func TestSweepStress(t *testing.T) {
	const (
		total   = 4000
		ackWait = 3 * time.Second
	)
	raw := testURL(t, "ack_wait=3s")
	cfg := mustParse(t, raw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := open(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer b.Close()
	b.retention = jetstream.LimitsPolicy
	pub, err := open(ctx, cfg, slog.New(slog.DiscardHandler)) // a handle of its own, as a service's
	require.NoError(t, err)
	defer pub.Close()
	pub.retention = jetstream.LimitsPolicy
	const topic = "stress"
	stream := b.names.stream(topic)

	type group struct {
		name    string
		retry   bool
		mu      sync.Mutex
		done    map[string]int // ID → completions
		backAt  map[string]time.Time
		slowest time.Duration
		late    int // hand-backs that came back after more than AckWait/2
	}
	groups := []*group{{name: "retry", retry: true}, {name: "ack"}}
	var handlers sync.WaitGroup
	for _, g := range groups {
		g.done, g.backAt = map[string]int{}, map[string]time.Time{}
		sub, err := b.Subscribe(ctx, topic, g.name, driver.SubscribeConfig{Concurrency: 4, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		defer sub.Close()
		for range 4 {
			handlers.Go(func() {
				for {
					d, err := sub.Receive(ctx)
					if err != nil {
						return
					}
					m := d.Message()
					if g.retry && m.Attempt == 1 {
						g.mu.Lock()
						g.backAt[m.ID] = time.Now()
						g.mu.Unlock()
						if err := d.Retry(ctx, time.Duration(20+rand.IntN(80))*time.Millisecond, 2); err != nil {
							t.Errorf("retry %s: %v", m.ID, err)
						}
						continue
					}
					g.mu.Lock()
					if at, ok := g.backAt[m.ID]; ok && m.Attempt == 2 {
						wait := time.Since(at)
						g.slowest = max(g.slowest, wait)
						if wait > ackWait/2 {
							g.late++
						}
					}
					g.mu.Unlock()
					if err := d.Ack(ctx); err != nil {
						t.Errorf("ack %s: %v", m.ID, err)
						continue
					}
					g.mu.Lock()
					g.done[m.ID]++
					g.mu.Unlock()
				}
			})
		}
	}

	// The sweeper: as fast as it can, until the publisher is done and
	// every message is handled.
	var purged, sweeps atomic.Int64
	stopSweep := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-stopSweep:
				return
			default:
			}
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			n, err := b.sweep(sctx, stream)
			scancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Logf("sweep: %v", err)
			}
			purged.Add(int64(n))
			sweeps.Add(1)
		}
	})

	start := time.Now()
	ids := make([]string, 0, total)
	for len(ids) < total {
		n := min(1+rand.IntN(8), total-len(ids))
		msgs := make([]*driver.Message, n)
		for i := range msgs {
			id := fmt.Sprintf("m-%05d", len(ids))
			ids = append(ids, id)
			msgs[i] = &driver.Message{ID: id, Payload: []byte(id)}
		}
		require.NoError(t, pub.SendBatch(ctx, topic, msgs))
	}
	published := time.Since(start)

	// Wait for completion: a lost message never comes; a delayed one comes
	// within AckWait (a lost negative acknowledgement or a progress report
	// after it). Give up after 4×AckWait without progress.
	missing := func(g *group) []string {
		g.mu.Lock()
		defer g.mu.Unlock()
		var out []string
		for _, id := range ids {
			if g.done[id] == 0 {
				out = append(out, id)
			}
		}
		return out
	}
	left, lastChange := -1, time.Now()
	for {
		n := len(missing(groups[0])) + len(missing(groups[1]))
		if n == 0 || time.Since(lastChange) > 4*ackWait {
			break
		}
		if n != left {
			left, lastChange = n, time.Now()
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a bound
	}
	close(stopSweep)
	sweeper.Wait()
	cancel()
	handlers.Wait()

	t.Logf("published %d in %v; %d sweeps purged %d messages", total, published.Round(time.Millisecond), sweeps.Load(), purged.Load())
	assert.Positive(t, purged.Load(), "the sweeps purged settled messages (else this test checks nothing)")
	for _, g := range groups {
		lost := missing(g)
		dups := 0
		for _, c := range g.done {
			dups += c - 1
		}
		t.Logf("group %s: received %d of %d, lost %d, duplicates %d; hand-backs back after more than AckWait/2: %d, slowest %v",
			g.name, len(g.done), total, len(lost), dups, g.late, g.slowest.Round(time.Millisecond))
		assert.Empty(t, lost, "group %s lost messages", g.name)
		assert.Zero(t, dups, "group %s: duplicates (no fault, no redelivery after AckWait expected)", g.name)
	}
}
