package memory_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// BenchmarkEndToEnd publishes b.N messages of 100 bytes one Publish at a time
// and waits until every group has handled (acked) every one, reporting
// msgs/s. The baseline is watermill's gochannel doing the same work in the
// same run, one subscription per group, each message acked.
func BenchmarkEndToEnd(b *testing.B) {
	payload := make([]byte, 100)
	for _, groups := range []int{1, 3} {
		b.Run(fmt.Sprintf("switchyard/groups=%d", groups), func(b *testing.B) {
			benchSwitchyard(b, groups, payload)
		})
		b.Run(fmt.Sprintf("watermill-gochannel/groups=%d", groups), func(b *testing.B) {
			benchGoChannel(b, groups, payload)
		})
	}
}

// waiter counts handled messages and closes done at want.
type waiter struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func newWaiter(want int) *waiter { return &waiter{want: int64(want), done: make(chan struct{})} }

func (w *waiter) handled() {
	if w.n.Add(1) == w.want {
		close(w.done)
	}
}

func (w *waiter) wait(b *testing.B) {
	select {
	case <-w.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("handled %d of %d", w.n.Load(), w.want)
	}
}

func benchSwitchyard(b *testing.B, groups int, payload []byte) {
	ctx := context.Background()
	br, err := memory.New(memory.Config{})
	require.NoError(b, err)
	defer br.Close()
	w := newWaiter(b.N * groups)
	for g := range groups {
		_, err := br.Subscribe(ctx, "bench", fmt.Sprintf("g%d", g), func(context.Context, *pubsub.Message) error {
			w.handled()
			return nil
		})
		require.NoError(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := br.Publish(ctx, "bench", &pubsub.Message{Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	w.wait(b)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func benchGoChannel(b *testing.B, groups int, payload []byte) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer gc.Close()
	w := newWaiter(b.N * groups)
	for range groups {
		ch, err := gc.Subscribe(ctx, "bench")
		require.NoError(b, err)
		go func() {
			for m := range ch {
				w.handled()
				m.Ack()
			}
		}()
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := gc.Publish("bench", message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			b.Fatal(err)
		}
	}
	w.wait(b)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
