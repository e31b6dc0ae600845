package gcppubsub_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// BenchmarkDrain measures how fast one member drains a backlog of b.N
// messages from pstest over gRPC, against the raw v2 client's Receive on a
// subscription set up alike (ordering, the group's filter, the same
// window), with one and four StreamingPull streams. pstest pushes about one
// message per stream every 10ms, whatever the client: the transport must
// not be slower than the raw client. msgs/s is reported.
func BenchmarkDrain(b *testing.B) {
	startEmulator(b)
	ctx := context.Background()
	raw, err := gpubsub.NewClient(ctx, testProject)
	require.NoError(b, err)
	b.Cleanup(func() { _ = raw.Close() })
	const concurrency = 10
	payload := make([]byte, 100)
	run := 0
	// backlog publishes n messages to a new topic with a group "g" created
	// before, and returns the topic.
	backlog := func(b *testing.B, sy *pubsub.Client, n int) string {
		run++
		topic := fmt.Sprintf("drain-%d", run)
		require.NoError(b, sy.CreateGroup(ctx, topic, "g"))
		msgs := make([]*pubsub.Message, n)
		for i := range msgs {
			msgs[i] = &pubsub.Message{Payload: payload}
		}
		require.NoError(b, sy.Publish(ctx, topic, msgs...))
		return topic
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
	for _, streams := range []int{1, 4} {
		b.Run(fmt.Sprintf("switchyard/streams=%d", streams), func(b *testing.B) {
			sy := newBroker(b, gcppubsub.Config{ReceiveStreams: streams})
			topic := backlog(b, sy, b.N)
			var n atomic.Int64
			done := make(chan struct{})
			b.ResetTimer()
			sub, err := sy.Subscribe(ctx, topic, "g", func(context.Context, *pubsub.Message) error {
				if n.Add(1) == int64(b.N) {
					close(done)
				}
				return nil
			}, pubsub.WithConcurrency(concurrency))
			require.NoError(b, err)
			<-done
			b.StopTimer()
			report(b)
			require.NoError(b, sub.Close())
		})
		b.Run(fmt.Sprintf("raw-pubsub-v2/streams=%d", streams), func(b *testing.B) {
			sy := newBroker(b, gcppubsub.Config{})
			topic := backlog(b, sy, b.N)
			s, err := raw.SubscriptionAdminClient.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: subPath(gcppubsub.GroupID(topic, "g"))})
			require.NoError(b, err)
			require.True(b, s.GetEnableMessageOrdering())
			require.Equal(b, gcppubsub.GroupFilter("g"), s.GetFilter())
			sub := raw.Subscriber(s.GetName())
			sub.ReceiveSettings.NumGoroutines = streams
			sub.ReceiveSettings.MaxOutstandingMessages = 1000 // the transport's window on an emulator
			var n atomic.Int64
			done := make(chan struct{})
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			b.ResetTimer()
			errc := make(chan error, 1)
			go func() {
				errc <- sub.Receive(rctx, func(_ context.Context, m *gpubsub.Message) {
					m.Ack()
					if n.Add(1) == int64(b.N) {
						close(done)
					}
				})
			}()
			select {
			case <-done:
			case err := <-errc:
				b.Fatalf("receive ended: %v", err)
			case <-time.After(10 * time.Minute):
				b.Fatal("not drained")
			}
			b.StopTimer()
			report(b)
			cancel()
			require.NoError(b, <-errc)
		})
	}
}
