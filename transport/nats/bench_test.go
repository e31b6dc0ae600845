package nats

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Benchmark shape, the same for both contenders: b.N messages of
// benchSize bytes, each with an ID (Nats-Msg-Id), published to a file
// stream with interest retention and one durable pull consumer, at most
// benchWindow awaiting their acknowledgement at once, consumed with
// explicit acks. The clock runs from the first publish until the last
// message was consumed, so both halves are measured together.
const (
	benchSize   = 256
	benchWindow = 1000
	benchBatch  = 100 // Switchyard: messages per Publish call
	benchPull   = 500 // raw: pull batch
)

// BenchmarkEndToEnd compares the transport, as an application uses it
// (defaults, but for WithConcurrency), with the raw nats.go jetstream
// client tuned by hand: asynchronous publishes with a window of
// benchWindow, a pull consumer fetching benchPull at a time, explicit
// acks. Run it with, for example:
//
//	go test -run XXX -bench EndToEnd -benchtime 100000x ./transport/nats/
func BenchmarkEndToEnd(b *testing.B) {
	raw := testURL(b, fmt.Sprintf("publish_window=%d", benchWindow))
	payload := make([]byte, benchSize)
	for _, c := range []int{pubsub.DefaultConcurrency, 100} {
		b.Run(fmt.Sprintf("switchyard/concurrency=%d", c), func(b *testing.B) { benchSwitchyard(b, raw, payload, c) })
	}
	b.Run("raw-jetstream", func(b *testing.B) { benchRaw(b, raw, payload) })
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// waitCount waits until n reaches want, failing b after a minute without
// progress.
func waitCount(b *testing.B, n *atomic.Int64, want int64) {
	last, lastChange := n.Load(), time.Now()
	for {
		cur := n.Load()
		if cur >= want {
			return
		}
		if cur != last {
			last, lastChange = cur, time.Now()
		}
		if time.Since(lastChange) > time.Minute {
			b.Fatalf("consumed %d of %d messages; no progress for a minute", cur, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// benchTopic returns a topic of its own for one run of b.
func benchTopic(b *testing.B) string { return fmt.Sprintf("bench-%d-%d", b.N, time.Now().UnixNano()) }

// benchSwitchyard publishes with benchWindow/benchBatch goroutines, each
// sending batches of benchBatch, so at most benchWindow await their
// acknowledgement.
func benchSwitchyard(b *testing.B, raw string, payload []byte, concurrency int) {
	ctx := context.Background()
	topic := benchTopic(b)
	br := openTest(b, raw)
	require.NoError(b, br.CreateGroup(ctx, topic, "bench"))
	var consumed atomic.Int64
	sub, err := br.Subscribe(ctx, topic, "bench", func(context.Context, *pubsub.Message) error {
		consumed.Add(1)
		return nil
	}, pubsub.WithConcurrency(concurrency))
	require.NoError(b, err)
	defer sub.Close()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchWindow / benchBatch {
		wg.Go(func() {
			for {
				first := next.Add(benchBatch) - benchBatch
				if first >= int64(b.N) {
					return
				}
				n := min(benchBatch, int64(b.N)-first)
				msgs := make([]*pubsub.Message, n)
				for i := range msgs {
					msgs[i] = &pubsub.Message{Payload: payload}
				}
				if err := br.Publish(ctx, topic, msgs...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitCount(b, &consumed, int64(b.N))
	reportRate(b, start)
}

// benchRaw is the same work with the raw client.
func benchRaw(b *testing.B, raw string, payload []byte) {
	ctx := context.Background()
	ns := mustParse(b, raw).Namespace
	nc, _ := rawClient(b, raw)
	defer nc.Close()
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(benchWindow),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	require.NoError(b, err)
	topic := benchTopic(b)
	stream, subject := ns+"_"+encode(topic), ns+"."+topic
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{subject}, Retention: jetstream.InterestPolicy, Storage: jetstream.FileStorage,
	})
	require.NoError(b, err)
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: subject, MaxAckPending: 10000,
	})
	require.NoError(b, err)
	var consumed atomic.Int64
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		consumed.Add(1)
	}, jetstream.PullMaxMessages(benchPull))
	require.NoError(b, err)
	defer cc.Stop()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		_, err := js.PublishAsync(subject, payload, jetstream.WithMsgID(pubsub.NewID()), jetstream.WithStallWait(time.Minute))
		require.NoError(b, err)
	}
	<-js.PublishAsyncComplete()
	require.Zero(b, failed.Load(), "publishes not acknowledged")
	waitCount(b, &consumed, int64(b.N))
	reportRate(b, start)
}
