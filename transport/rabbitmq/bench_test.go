package rabbitmq

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Benchmark shape, the same for every contender: b.N messages of benchSize
// bytes, durable (persistent messages, durable quorum queue, publisher
// confirms), published to a fanout exchange with one queue bound, consumed
// and acknowledged one by one. At most benchWindow messages await their
// confirm at any time. The clock runs from the first publish until the last
// message was consumed, so both halves are measured together.
const (
	benchSize   = 128
	benchWindow = 1000
	benchGroup  = "bench"
)

// BenchmarkEndToEnd compares Switchyard's RabbitMQ transport to the raw
// amqp091-go client tuned by hand (pipelined confirms with a window of 1000,
// prefetch 1000), once acking message by message as Switchyard does and
// once acking in batches of benchAckBatch (basic.ack multiple), and to
// watermill-amqp with confirms on. "switchyard" has the raw client's
// prefetch of 1000 (prefetch=1000), so that the ratio measures the
// transport; "switchyard-default-prefetch" has the default settings
// (concurrency 10, so prefetch 20), which on a quorum queue hold each
// subscription to about prefetch per Raft round trip (see the package
// documentation). Run it with, for example:
//
//	go test -run XXX -bench EndToEnd -benchtime 20000x ./transport/rabbitmq/
func BenchmarkEndToEnd(b *testing.B) {
	rawURL := testURL(b, "")
	payload := make([]byte, benchSize)
	b.Run("switchyard", func(b *testing.B) { benchSwitchyard(b, rawURL+"?prefetch="+strconv.Itoa(benchWindow), payload) })
	b.Run("switchyard-default-prefetch", func(b *testing.B) { benchSwitchyard(b, rawURL, payload) })
	b.Run("raw-amqp091", func(b *testing.B) { benchRaw(b, rawURL, payload, 1) })
	b.Run("raw-amqp091-batch-ack", func(b *testing.B) { benchRaw(b, rawURL, payload, benchAckBatch) })
	b.Run("watermill-amqp", func(b *testing.B) { benchWatermill(b, rawURL, payload) })
}

// benchAckBatch is how many deliveries the batch-acking raw contender
// acknowledges at once.
const benchAckBatch = 100

func reportRate(b *testing.B, start time.Time) {
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// waitCount waits until *n reaches want, failing b after a minute without
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

// benchSwitchyard publishes with benchWindow/100 goroutines, each sending
// batches of 100 messages, so at most benchWindow await their confirm.
func benchSwitchyard(b *testing.B, rawURL string, payload []byte) {
	ctx := context.Background()
	topic := uniqueTopic(b, benchGroup)
	br := openTest(b, rawURL)
	require.NoError(b, br.CreateGroup(ctx, topic, benchGroup))
	var consumed atomic.Int64
	sub, err := br.Subscribe(ctx, topic, benchGroup, func(context.Context, *pubsub.Message) error {
		consumed.Add(1)
		return nil
	})
	require.NoError(b, err)
	defer func() { _ = sub.Close() }()

	b.ResetTimer()
	start := time.Now()
	publishInBatches(b, func(n int) error {
		msgs := make([]*pubsub.Message, n)
		for k := range msgs {
			msgs[k] = &pubsub.Message{Payload: payload}
		}
		return br.Publish(ctx, topic, msgs...)
	})
	waitCount(b, &consumed, int64(b.N))
	reportRate(b, start)
}

// publishInBatches publishes b.N messages from benchWindow/100 goroutines, in
// batches of 100 made and sent by publish(n), so that at most benchWindow
// messages await their confirms; it fails b on the first error.
func publishInBatches(b *testing.B, publish func(n int) error) {
	const batch = 100
	const publishers = benchWindow / batch
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for range publishers {
		wg.Go(func() {
			for {
				end := next.Add(batch)
				first := end - batch
				if first >= int64(b.N) {
					return
				}
				if err := publish(int(min(end, int64(b.N)) - first)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// benchRaw is amqp091-go by hand: one connection publishing with a sliding
// window of benchWindow deferred confirmations, one consuming with prefetch
// benchWindow and acking every ackBatch messages (basic.ack multiple when
// ackBatch > 1).
func benchRaw(b *testing.B, rawURL string, payload []byte, ackBatch int) {
	topic := uniqueTopic(b, benchGroup)
	queue := groupQueueName(topic, benchGroup)
	pubConn, err := amqp.Dial(rawURL)
	require.NoError(b, err)
	defer pubConn.Close()
	subConn, err := amqp.Dial(rawURL)
	require.NoError(b, err)
	defer subConn.Close()

	pch, err := pubConn.Channel()
	require.NoError(b, err)
	require.NoError(b, pch.ExchangeDeclare(topic, amqp.ExchangeFanout, true, false, false, false, nil))
	_, err = pch.QueueDeclare(queue, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	require.NoError(b, err)
	require.NoError(b, pch.QueueBind(queue, "", topic, false, nil))
	require.NoError(b, pch.Confirm(false))

	sch, err := subConn.Channel()
	require.NoError(b, err)
	require.NoError(b, sch.Qos(benchWindow, 0, false))
	deliveries, err := sch.Consume(queue, "", false, false, false, false, nil)
	require.NoError(b, err)
	var consumed atomic.Int64
	go func() {
		n := 0
		for d := range deliveries {
			n++
			if n%ackBatch == 0 || n == b.N {
				_ = d.Ack(ackBatch > 1)
			}
			consumed.Add(1)
		}
	}()

	b.ResetTimer()
	start := time.Now()
	window := make(chan *amqp.DeferredConfirmation, benchWindow)
	confirmErr := make(chan error, 1)
	go func() {
		defer close(confirmErr)
		for dc := range window {
			if !dc.Wait() {
				confirmErr <- fmt.Errorf("message %d nacked", dc.DeliveryTag)
				return
			}
		}
	}()
	for i := range b.N {
		dc, err := pch.PublishWithDeferredConfirm(topic, "", false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			MessageId:    fmt.Sprint(i),
			Body:         payload,
		})
		require.NoError(b, err)
		window <- dc
	}
	close(window)
	require.NoError(b, <-confirmErr)
	waitCount(b, &consumed, int64(b.N))
	reportRate(b, start)
}
