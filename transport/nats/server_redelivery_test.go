//go:build reliability

package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestServerDropsRedeliveryOnExpiredPull measures, with a plain nats.go
// client (no Switchyard code), how NATS Server handles a redelivery (after
// a negative acknowledgement with delay) that becomes due just as the only
// pull request waiting expires. NATS Server before 2.10.16 (nats-server
// c3416ca0a and 8272e749d, "Fixed delivery counts on failed deliveries")
// takes the message off its redelivery queue, finds the request expired,
// and neither puts it back nor delivers it: the message comes back only
// after AckWait; and it steps the consumer's position back one message,
// which is delivered again with delivery count 1. Each trial sends a pull
// request that expires delta before the redelivery is due (delta swept
// over a few milliseconds either side), then, after the delay, a fresh
// request: a redelivery that is not in the first answer or the second
// within 1s was dropped. The test logs how many trials lost it (on
// 2.9.10: 1 to 7 of 111); on a server that redeliverySafe says is fixed,
// one drop fails it (the broker would then use NakWithDelay there).
//
//	go test -tags reliability -run TestServerDropsRedeliveryOnExpiredPull -v ./transport/nats/
func TestServerDropsRedeliveryOnExpiredPull(t *testing.T) {
	raw := serverURL(t)
	nc, js := rawClient(t, raw)
	defer nc.Close()
	ctx := context.Background()
	ns := testNamespace(t)
	stream := ns + "_drop"
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{ns + ".drop.>"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	const (
		ackWait = 10 * time.Second
		delay   = 150 * time.Millisecond
		perStep = 3
	)
	type result struct {
		delta          time.Duration
		dropped, dupe1 bool
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	trial := func(i int, delta time.Duration) {
		defer wg.Done()
		sem <- struct{}{}
		defer func() { <-sem }()
		subject := fmt.Sprintf("%s.drop.%d", ns, i)
		c, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("c%d", i), AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
			FilterSubject: subject, MaxDeliver: -1,
		})
		if err != nil {
			t.Errorf("consumer: %v", err)
			return
		}
		if _, err := js.Publish(ctx, subject, []byte("m")); err != nil {
			t.Errorf("publish: %v", err)
			return
		}
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Errorf("fetch: %v", err)
			return
		}
		var first jetstream.Msg
		for m := range batch.Messages() {
			first = m
		}
		if first == nil {
			t.Errorf("trial %d: first delivery missing", i)
			return
		}
		inbox := nc.NewInbox()
		ch := make(chan *natsgo.Msg, 16)
		sub, err := nc.ChanSubscribe(inbox, ch)
		if err != nil {
			t.Errorf("subscribe: %v", err)
			return
		}
		defer sub.Unsubscribe()
		next := "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + fmt.Sprintf("c%d", i)
		pull := func(expires time.Duration) {
			body, _ := json.Marshal(map[string]any{"batch": 1, "expires": expires.Nanoseconds()})
			_ = nc.PublishRequest(next, inbox, body)
			_ = nc.Flush()
		}
		if err := first.NakWithDelay(delay); err != nil {
			t.Errorf("nak: %v", err)
			return
		}
		pull(delay - delta) // expires delta before the redelivery is due
		res := result{delta: delta}
		got := func(until time.Time) (*natsgo.Msg, bool) {
			for {
				select {
				case m := <-ch:
					if len(m.Data) == 0 && m.Header.Get("Status") != "" {
						continue // 408 and the like
					}
					return m, true
				case <-time.After(time.Until(until)):
					return nil, false
				}
			}
		}
		m, ok := got(time.Now().Add(delay + 100*time.Millisecond))
		if !ok {
			pull(time.Second)
			m, ok = got(time.Now().Add(time.Second + 200*time.Millisecond))
		}
		if !ok {
			res.dropped = true
		} else if md, err := (&jetStreamMsgMeta{m}).meta(); err == nil && md.NumDelivered == 1 {
			res.dropped, res.dupe1 = true, true
		}
		mu.Lock()
		results = append(results, res)
		mu.Unlock()
	}
	i := 0
	for delta := -6 * time.Millisecond; delta <= 12*time.Millisecond; delta += 500 * time.Microsecond {
		for range perStep {
			wg.Add(1)
			go trial(i, delta)
			i++
		}
	}
	wg.Wait()
	dropped, dupes := 0, 0
	byDelta := map[time.Duration]int{}
	for _, r := range results {
		if r.dropped {
			dropped++
			byDelta[r.delta]++
		}
		if r.dupe1 {
			dupes++
		}
	}
	version := nc.ConnectedServerVersion()
	t.Logf("server %s: %d trials, redelivery dropped in %d (%d of them came back as a new delivery, count 1); drops by delta: %v", version, len(results), dropped, dupes, byDelta)
	if redeliverySafe(version) {
		require.Zero(t, dropped, "server %s drops redeliveries: redeliverySafe is wrong about it", version)
	}
}

// jetStreamMsgMeta reads the JetStream metadata of a message received on a
// plain subscription.
type jetStreamMsgMeta struct{ m *natsgo.Msg }

func (j *jetStreamMsgMeta) meta() (*natsgo.MsgMetadata, error) { return j.m.Metadata() }
