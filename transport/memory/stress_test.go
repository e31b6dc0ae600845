package memory_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// TestStressNoLossUnderChurn publishes from several goroutines while members
// of one group fail at random and come and go (some cut off mid-handler);
// every message must still be handled successfully, and keyed messages in
// order of their successful handling.
func TestStressNoLossUnderChurn(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	ctx := context.Background()
	b, err := memory.New(memory.Config{GroupCapacity: 300})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateGroup(ctx, "stress", "g"))

	var mu sync.Mutex
	done := map[string]int{}
	lastSeq := map[string]int{}
	outOfOrder := 0
	allDone := make(chan struct{})
	handler := func(hctx context.Context, m *pubsub.Message) error {
		if rand.IntN(5) == 0 {
			return errors.New("random failure")
		}
		if rand.IntN(50) == 0 {
			// Slow: a churning member may be cut off meanwhile.
			select {
			case <-hctx.Done():
				return hctx.Err()
			case <-time.After(10 * time.Millisecond):
				return errors.New("slow and failed")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if done[m.ID] == 0 {
			seq, _ := strconv.Atoi(m.Metadata["seq"])
			if seq < lastSeq[m.Key] {
				outOfOrder++
			}
			lastSeq[m.Key] = seq
		}
		done[m.ID]++
		if len(done) == n {
			close(allDone)
		}
		return nil
	}
	opts := []pubsub.SubscribeOption{
		pubsub.WithConcurrency(4), pubsub.WithMaxAttempts(1000),
		pubsub.WithBackoff(time.Millisecond, 4*time.Millisecond), pubsub.WithLogger(nil),
	}

	stopChurn := make(chan struct{})
	var churn sync.WaitGroup
	for range 3 {
		churn.Go(func() {
			for {
				sub, err := b.Subscribe(ctx, "stress", "g", handler, opts...)
				if err != nil {
					t.Error(err)
					return
				}
				select {
				case <-stopChurn:
					_ = sub.Close()
					return
				case <-time.After(time.Duration(20+rand.IntN(40)) * time.Millisecond):
				}
				sctx, cancel := context.WithTimeout(ctx, time.Duration(rand.IntN(5))*time.Millisecond)
				_ = sub.Shutdown(sctx)
				cancel()
			}
		})
	}
	// A steady member, so the group always drains.
	steady, err := b.Subscribe(ctx, "stress", "g", handler, opts...)
	require.NoError(t, err)
	defer steady.Close()

	var pubs sync.WaitGroup
	for p := range 4 {
		pubs.Go(func() {
			for i := p; i < n; i += 4 {
				key := fmt.Sprintf("p%d-k%d", p, i%3) // one publisher per key: its seq order is publish order
				m := &pubsub.Message{ID: fmt.Sprintf("m%d", i), Key: key, Metadata: map[string]string{"seq": fmt.Sprint(i)}}
				if err := b.Publish(ctx, "stress", m); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	pubs.Wait()
	select {
	case <-allDone:
	case <-time.After(60 * time.Second):
		mu.Lock()
		t.Fatalf("only %d of %d messages handled", len(done), n)
	}
	close(stopChurn)
	churn.Wait()
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, done, n, "every message handled")
	assert.Zero(t, outOfOrder, "each key's messages first succeeded in publish order")
}
