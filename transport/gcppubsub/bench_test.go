package gcppubsub_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

const (
	benchTopic      = "bench"
	benchBatch      = 10_000
	benchPublishers = 16
	benchPayload    = 100
)

// BenchmarkPublish compares Switchyard's Publish with the raw v2 client
// publishing asynchronously and waiting for all results, against one pstest
// server over gRPC, in two shapes: batches of 10,000 messages, and 16
// goroutines each publishing one message at a time. b.N counts messages;
// msgs/s is reported. watermill-googlecloud's publisher, which waits for each
// message before sending the next, is measured as a reference.
func BenchmarkPublish(b *testing.B) {
	srv := startEmulator(b)
	ctx := context.Background()
	payload := make([]byte, benchPayload)

	sy := newBroker(b, gcppubsub.Config{})
	require.NoError(b, sy.Publish(ctx, benchTopic, pubsub.NewMessage(payload)), "creates the topic")
	raw, err := gpubsub.NewClient(ctx, testProject)
	require.NoError(b, err)
	b.Cleanup(func() { _ = raw.Close() })
	rawPub := raw.Publisher(benchTopic)
	b.Cleanup(rawPub.Stop)

	run := func(b *testing.B, publish func(n int) error) {
		srv.ClearMessages()
		b.ResetTimer()
		require.NoError(b, publish(b.N))
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
	// inBatches calls publish with batch sizes adding up to n. Between
	// batches, off the clock, the emulator forgets the messages it keeps,
	// so that every batch meets the same heap.
	inBatches := func(b *testing.B, n int, publish func(n int) error) error {
		for n > 0 {
			k := min(n, benchBatch)
			if err := publish(k); err != nil {
				return err
			}
			n -= k
			b.StopTimer()
			srv.ClearMessages()
			runtime.GC()
			b.StartTimer()
		}
		return nil
	}
	// concurrently runs benchPublishers goroutines that call publish n times
	// in all.
	concurrently := func(n int, publish func() error) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, benchPublishers)
		for i := range benchPublishers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := publish(); err != nil {
						errs[i] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}

	b.Run("switchyard/batch=10000", func(b *testing.B) {
		run(b, func(n int) error {
			return inBatches(b, n, func(k int) error {
				msgs := make([]*pubsub.Message, k)
				for i := range msgs {
					msgs[i] = &pubsub.Message{Payload: payload}
				}
				return sy.Publish(ctx, benchTopic, msgs...)
			})
		})
	})
	b.Run("raw-pubsub-v2/batch=10000", func(b *testing.B) {
		run(b, func(n int) error {
			return inBatches(b, n, func(k int) error {
				results := make([]*gpubsub.PublishResult, k)
				for i := range results {
					results[i] = rawPub.Publish(ctx, &gpubsub.Message{Data: payload})
				}
				for _, r := range results {
					if _, err := r.Get(ctx); err != nil {
						return err
					}
				}
				return nil
			})
		})
	})
	b.Run("switchyard/publishers=16", func(b *testing.B) {
		run(b, func(n int) error {
			return concurrently(n, func() error {
				return sy.Publish(ctx, benchTopic, &pubsub.Message{Payload: payload})
			})
		})
	})
	b.Run("raw-pubsub-v2/publishers=16", func(b *testing.B) {
		run(b, func(n int) error {
			return concurrently(n, func() error {
				_, err := rawPub.Publish(ctx, &gpubsub.Message{Data: payload}).Get(ctx)
				return err
			})
		})
	})
	b.Run("watermill-googlecloud/batch", func(b *testing.B) {
		wm, err := googlecloud.NewPublisher(googlecloud.PublisherConfig{ProjectID: testProject, PublishTimeout: 5 * time.Minute}, watermill.NopLogger{})
		require.NoError(b, err)
		defer wm.Close()
		run(b, func(n int) error {
			msgs := make([]*message.Message, n)
			for i := range msgs {
				msgs[i] = message.NewMessage(watermill.NewUUID(), payload)
			}
			return wm.Publish(benchTopic, msgs...)
		})
	})
}
