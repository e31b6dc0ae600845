package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
)

// testURL returns the test broker's URL with the query parameters of query
// added, skipping t (failing it under CI=true) when the broker is down.
func testURL(t testing.TB, query string) string {
	t.Helper()
	raw := brokertest.AMQPURL(t)
	if query == "" {
		return raw
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	return raw + sep + query
}

// openTest opens a Broker on rawURL, closed when t ends.
func openTest(t testing.TB, rawURL string) *Broker {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenURL(ctx, u)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// uniqueTopic returns a topic name of its own for t, and deletes the
// topology of the topic (and its dead-letter topic) for groups when t ends.
func uniqueTopic(t testing.TB, groups ...string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	topic := "sytest-" + name + "-" + hex.EncodeToString(b[:])
	rawURL := testURL(t, "")
	t.Cleanup(func() {
		deleteTopology(t, rawURL, map[string][]string{topic: groups, topic + pubsub.DeadLetterSuffix: groups})
	})
	return topic
}

// deleteTopology deletes the exchanges of topics and the queues (group and
// retry queues) of their groups. Errors are only logged.
func deleteTopology(t testing.TB, rawURL string, topics map[string][]string) {
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	for topic, groups := range topics {
		for _, g := range groups {
			q := groupQueueName(topic, g)
			for _, bucket := range allBuckets() {
				_, _ = ch.QueueDelete(retryQueueName(q, bucket), false, false, true)
			}
			_, _ = ch.QueueDelete(q, false, false, true)
		}
		_ = ch.ExchangeDelete(exchangeName(topic), false, true)
	}
	// A no-wait delete is done when a later synchronous call returns.
	_, _ = ch.QueueDelete("sytest-cleanup-sync", false, false, false)
}

// allBuckets lists every retry bucket up to maxRetryDelay.
func allBuckets() []time.Duration {
	var out []time.Duration
	for d := time.Millisecond; d <= maxRetryDelay; {
		b := retryBucket(d)
		out = append(out, b)
		d = b + time.Millisecond
	}
	return out
}

// recorder remembers the topics and groups a test used, to delete them.
type recorder struct {
	mu     sync.Mutex
	topics map[string]map[string]bool
}

func (r *recorder) add(topic, group string) {
	if pubsub.ValidateTopic(topic) != nil || (group != "" && pubsub.ValidateGroup(group) != nil) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.topics == nil {
		r.topics = map[string]map[string]bool{}
	}
	if r.topics[topic] == nil {
		r.topics[topic] = map[string]bool{}
	}
	if group != "" {
		r.topics[topic][group] = true
	}
}

func (r *recorder) all() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for topic, groups := range r.topics {
		out[topic] = nil
		for g := range groups {
			out[topic] = append(out[topic], g)
			// Dead-letter groups of the same name.
			out[topic+pubsub.DeadLetterSuffix] = append(out[topic+pubsub.DeadLetterSuffix], g)
		}
	}
	return out
}

// recordingBroker is a Broker that records the names it is used with.
type recordingBroker struct {
	*Broker
	rec *recorder
}

func (b recordingBroker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	b.rec.add(topic, "")
	return b.Broker.Publish(ctx, topic, msgs...)
}

func (b recordingBroker) CreateGroup(ctx context.Context, topic, group string) error {
	b.rec.add(topic, group)
	return b.Broker.CreateGroup(ctx, topic, group)
}

func (b recordingBroker) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	b.rec.add(topic, group)
	if cfg, err := pubsub.NewSubscribeConfig(topic, group, opts...); err == nil {
		b.rec.add(cfg.DeadLetterTopic, group)
	}
	return b.Broker.Subscribe(ctx, topic, group, h, opts...)
}
