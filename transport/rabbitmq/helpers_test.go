package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// TestMain gives this test process retry queues of its own (so that deleting
// them afterwards cannot disturb another process using the broker) and
// deletes them when the tests are done.
func TestMain(m *testing.M) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	retryPrefix = "sytest-" + hex.EncodeToString(b[:]) + nameSep + "retry" + nameSep
	code := m.Run()
	deleteRetryQueues()
	os.Exit(code)
}

// deleteRetryQueues deletes every retry queue and exchange this process may
// have made.
func deleteRetryQueues() {
	raw := os.Getenv("SWITCHYARD_AMQP_URL")
	if raw == "" {
		raw = brokertest.DefaultAMQPURL
	}
	conn, err := amqp.Dial(raw)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		for _, bucket := range allBuckets() {
			name := retryName(qt, bucket)
			_, _ = ch.QueueDelete(name, false, false, true)
			_ = ch.ExchangeDelete(name, false, true)
		}
	}
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

// testLogger discards logs, unless SWITCHYARD_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("SWITCHYARD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openTest opens a client on rawURL, closed when t ends.
func openTest(t testing.TB, rawURL string, opts ...pubsub.BrokerOption) *pubsub.Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := OpenURL(ctx, u, append([]pubsub.BrokerOption{pubsub.WithLogger(testLogger())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// openDriver opens a client on rawURL as openTest does, and returns it with
// its driver, for tests that reach below the portable layer.
func openDriver(t testing.TB, rawURL string, opts ...pubsub.BrokerOption) (*pubsub.Client, *broker) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	cfg, err := parseURL(u)
	require.NoError(t, err)
	cfg.setDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b *broker
	c, err := pubsub.NewClient(ctx, func(ctx context.Context, env driver.Env) (driver.Broker, error) {
		var err error
		b, err = open(ctx, cfg, env.Logger)
		return b, err
	}, append([]pubsub.BrokerOption{pubsub.WithLogger(testLogger())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, b
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// uniqueTopic returns a topic name of its own for t, and deletes the
// topology of the topic and of groups when t ends.
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
	t.Cleanup(func() { deleteTopology(t, rawURL, map[string][]string{topic: groups}) })
	return topic
}

// deleteTopology deletes the exchanges of topics and the queues (group and
// dead-letter queues) of their groups. Errors are only logged.
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
			_, _ = ch.QueueDelete(groupQueueName(topic, g), false, false, true)
			_, _ = ch.QueueDelete(deadQueueName(topic, g), false, false, true)
		}
		_ = ch.ExchangeDelete(exchangeName(topic), false, true)
	}
	// A no-wait delete is done when a later synchronous call returns.
	if _, err := ch.QueueDelete("sytest-cleanup-sync", false, false, false); err != nil {
		t.Logf("cleanup: %v", err)
	}
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
		}
	}
	return out
}

// recorders hands out one recorder per test, which deletes what the test
// used when it ends.
type recorders struct {
	rawURL string
	mu     sync.Mutex
	byTest map[testing.TB]*recorder
}

func (rs *recorders) of(t testing.TB) *recorder {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byTest == nil {
		rs.byTest = map[testing.TB]*recorder{}
	}
	r := rs.byTest[t]
	if r == nil {
		r = &recorder{}
		rs.byTest[t] = r
		t.Cleanup(func() {
			deleteTopology(t, rs.rawURL, r.all())
			rs.mu.Lock()
			delete(rs.byTest, t)
			rs.mu.Unlock()
		})
	}
	return r
}

// recordingClient is a client that records the names it is used with.
type recordingClient struct {
	*pubsub.Client
	rec *recorder
}

func (c recordingClient) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	c.rec.add(topic, "")
	return c.Client.Publish(ctx, topic, msgs...)
}

func (c recordingClient) CreateGroup(ctx context.Context, topic, group string) error {
	c.rec.add(topic, group)
	return c.Client.CreateGroup(ctx, topic, group)
}

func (c recordingClient) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	c.rec.add(topic, group)
	return c.Client.Subscribe(ctx, topic, group, h, opts...)
}

// rawChannel opens a plain amqp091 channel on the test broker, for checking
// what the transport declared and published.
func rawChannel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(testURL(t, ""))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	return ch
}

// queueLength returns the number of ready messages in queue.
func queueLength(t testing.TB, queue string) int {
	t.Helper()
	q, err := rawChannel(t).QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err, "queue %s", queue)
	return q.Messages
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func ids(ms []*pubsub.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func newMessages(prefix string, n int) []*pubsub.Message {
	ms := make([]*pubsub.Message, n)
	for i := range ms {
		ms[i] = &pubsub.Message{ID: fmt.Sprintf("%s-%03d", prefix, i), Payload: fmt.Appendf(nil, "payload %d", i)}
	}
	return ms
}

const waitTimeout = 20 * time.Second

// got is one handler call.
type got struct {
	msg *pubsub.Message
	at  time.Time
}

// collector records handler calls.
type collector struct {
	mu     sync.Mutex
	calls  []got
	notify chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) add(m *pubsub.Message) {
	c.mu.Lock()
	c.calls = append(c.calls, got{msg: m, at: time.Now()})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// handler records each message and acks it.
func (c *collector) handler(_ context.Context, m *pubsub.Message) error {
	c.add(m)
	return nil
}

func (c *collector) snapshot() []got {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]got(nil), c.calls...)
}

// waitN waits for n calls and returns them, failing t after waitTimeout.
func (c *collector) waitN(t testing.TB, n int) []got {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if s := c.snapshot(); len(s) >= n {
			return s
		}
		select {
		case <-c.notify:
		case <-deadline:
			require.FailNowf(t, "timed out", "waited for %d handler calls, got %d", n, len(c.snapshot()))
		}
	}
}

// quiet waits d (a quiet period, to see that nothing more arrives) and
// returns every call so far.
func (c *collector) quiet(d time.Duration) []got {
	time.Sleep(d)
	return c.snapshot()
}

// gotIDs returns the IDs of calls, sorted.
func gotIDs(calls []got) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.msg.ID
	}
	slices.Sort(out)
	return out
}

// subscribe subscribes and fails t on error; the subscription closes with t.
func subscribe(t testing.TB, ctx context.Context, c pubsub.Subscriber, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) *pubsub.Subscription {
	t.Helper()
	sub, err := c.Subscribe(ctx, topic, group, h, opts...)
	require.NoError(t, err, "Subscribe(%s, %s)", topic, group)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// bufferLogger returns a logger writing to a buffer it returns.
func bufferLogger() (*slog.Logger, *testlog.Buffer) {
	var buf testlog.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// getAll takes every message of queue with a plain client (acking them), in
// queue order.
func getAll(t testing.TB, queue string) []amqp.Delivery {
	t.Helper()
	ch := rawChannel(t)
	var out []amqp.Delivery
	for {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

// driverConfig is the configuration of a driver subscription with
// concurrency n, for tests that use the driver directly.
func driverConfig(n int) driver.SubscribeConfig {
	return driver.SubscribeConfig{Concurrency: n, MaxAttempts: 5, BackoffMax: time.Second, Logger: testLogger()}
}
