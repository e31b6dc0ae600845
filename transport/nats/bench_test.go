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

// Benchmark shape, the same for both contenders: n messages of benchSize
// bytes, each with an ID (Nats-Msg-Id), published to a file stream with
// interest retention and one durable pull consumer, at most benchWindow
// awaiting their acknowledgement at once, consumed with explicit acks. The
// clock runs from the first publish until the last message was consumed,
// so both halves are measured together; creating streams and consumers is
// not measured.
const (
	benchSize   = 256
	benchWindow = 1000
	benchBatch  = 100   // Switchyard: messages per Publish call
	benchPull   = 500   // raw: messages per pull
	benchRound  = 20000 // ratio: messages per round
)

// BenchmarkEndToEnd compares the transport, as an application uses it
// (default settings), with the raw nats.go jetstream client tuned by hand:
// asynchronous publishes with a window of benchWindow, a pull consumer
// (Consume) fetching benchPull at a time, explicit acks. Run it with, for
// example:
//
//	go test -run XXX -bench EndToEnd -benchtime 100000x ./transport/nats/
//
// The machine's other work makes single runs noisy: the ratio sub-benchmark
// runs the two alternately, in rounds of benchRound messages, so that they
// meet the same conditions, and reports Switchyard's rate over the raw
// client's as "ratio".
func BenchmarkEndToEnd(b *testing.B) {
	raw := testURL(b, fmt.Sprintf("publish_window=%d", benchWindow))
	payload := make([]byte, benchSize)
	report := func(b *testing.B, took time.Duration) {
		b.ReportMetric(float64(b.N)/took.Seconds(), "msgs/s")
	}
	b.Run("switchyard", func(b *testing.B) { report(b, runSwitchyard(b, raw, payload, b.N)) })
	b.Run("raw-jetstream", func(b *testing.B) { report(b, runRaw(b, raw, payload, b.N)) })
	b.Run("ratio", func(b *testing.B) {
		var sy, rw time.Duration
		for done := 0; done < b.N; done += benchRound {
			n := min(benchRound, b.N-done)
			sy += runSwitchyard(b, raw, payload, n)
			rw += runRaw(b, raw, payload, n)
		}
		b.ReportMetric(float64(b.N)/sy.Seconds(), "switchyard-msgs/s")
		b.ReportMetric(float64(b.N)/rw.Seconds(), "raw-msgs/s")
		b.ReportMetric(rw.Seconds()/sy.Seconds(), "ratio")
	})
}

// waitCount waits until n reaches want, failing tb after a minute without
// progress.
func waitCount(tb testing.TB, n *atomic.Int64, want int64) {
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
			tb.Fatalf("consumed %d of %d messages; no progress for a minute", cur, want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

var benchTopics atomic.Int64

// benchTopic returns a topic of its own for one run.
func benchTopic() string { return fmt.Sprintf("bench-%d", benchTopics.Add(1)) }

// runSwitchyard publishes n messages with benchWindow/benchBatch
// goroutines, each sending batches of benchBatch (so at most benchWindow
// await their acknowledgement), to a group that one subscription with
// default settings consumes, and returns how long that took.
func runSwitchyard(tb testing.TB, raw string, payload []byte, n int) time.Duration {
	ctx := context.Background()
	topic := benchTopic()
	br := openTest(tb, raw)
	require.NoError(tb, br.CreateGroup(ctx, topic, "bench"))
	var consumed atomic.Int64
	sub, err := br.Subscribe(ctx, topic, "bench", func(context.Context, *pubsub.Message) error {
		consumed.Add(1)
		return nil
	})
	require.NoError(tb, err)
	defer sub.Close()

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchWindow / benchBatch {
		wg.Go(func() {
			for {
				first := next.Add(benchBatch) - benchBatch
				if first >= int64(n) {
					return
				}
				msgs := make([]*pubsub.Message, min(benchBatch, int64(n)-first))
				for i := range msgs {
					msgs[i] = &pubsub.Message{Payload: payload}
				}
				if err := br.Publish(ctx, topic, msgs...); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitCount(tb, &consumed, int64(n))
	return time.Since(start)
}

// runRaw is the same work with the raw client.
func runRaw(tb testing.TB, raw string, payload []byte, n int) time.Duration {
	ctx := context.Background()
	ns := mustParse(tb, raw).Namespace
	nc, _ := rawClient(tb, raw)
	defer nc.Close()
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(benchWindow),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	require.NoError(tb, err)
	topic := benchTopic()
	stream, subject := ns+"_"+encode(topic), ns+"."+topic
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{subject}, Retention: jetstream.InterestPolicy, Storage: jetstream.FileStorage,
	})
	require.NoError(tb, err)
	defer func() { _ = js.DeleteStream(ctx, stream) }()
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: subject, MaxAckPending: 10000,
	})
	require.NoError(tb, err)
	var consumed atomic.Int64
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		consumed.Add(1)
	}, jetstream.PullMaxMessages(benchPull))
	require.NoError(tb, err)
	defer cc.Stop()

	start := time.Now()
	for range n {
		_, err := js.PublishAsync(subject, payload, jetstream.WithMsgID(pubsub.NewID()), jetstream.WithStallWait(time.Minute))
		require.NoError(tb, err)
	}
	<-js.PublishAsyncComplete()
	require.Zero(tb, failed.Load(), "publishes not acknowledged")
	waitCount(tb, &consumed, int64(n))
	return time.Since(start)
}
