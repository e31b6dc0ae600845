package rabbitmq

import (
	"math"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
)

func TestRetryBucket(t *testing.T) {
	for _, tc := range []struct {
		delay, want time.Duration
	}{
		{0, time.Millisecond},
		{-time.Second, time.Millisecond},
		{time.Millisecond, time.Millisecond},
		{1001 * time.Microsecond, 2 * time.Millisecond},
		{100 * time.Millisecond, 128 * time.Millisecond},
		{128 * time.Millisecond, 128 * time.Millisecond},
		{129 * time.Millisecond, 182 * time.Millisecond},
		{30 * time.Second, 32768 * time.Millisecond},
		{48 * time.Hour, retryBucket(maxRetryDelay)},
	} {
		assert.Equal(t, tc.want, retryBucket(tc.delay), "delay %v", tc.delay)
	}
	// Every bucket is at least the delay and at most √2·delay + 1ms; the
	// buckets are few.
	seen := map[time.Duration]bool{}
	for d := time.Millisecond; d <= maxRetryDelay; d = d*21/20 + time.Microsecond {
		b := retryBucket(d)
		assert.GreaterOrEqual(t, b, d)
		assert.LessOrEqual(t, float64(b), math.Sqrt2*float64(d)+float64(time.Millisecond), "delay %v", d)
		assert.Equal(t, b, retryBucket(b), "a bucket is its own bucket")
		seen[b] = true
	}
	assert.Len(t, seen, len(allBuckets()))
	assert.Equal(t, 53, len(seen), "buckets from 1ms to 24h: the most retry queues a virtual host gets per queue type")
	// The default backoff (delays 50ms..30s) uses 19 buckets.
	n := 0
	for b := range seen {
		if b >= retryBucket(50*time.Millisecond) && b <= retryBucket(30*time.Second) {
			n++
		}
	}
	assert.Equal(t, 19, n)
}

func TestNames(t *testing.T) {
	assert.Equal(t, "orders", exchangeName("orders"))
	assert.Equal(t, "orders:billing", groupQueueName("orders", "billing"))
	assert.Equal(t, "orders:billing:dead", deadQueueName("orders", "billing"))
	assert.Equal(t, retryPrefix+"quorum:128", retryName(QueueQuorum, 128*time.Millisecond))
	assert.Equal(t, retryPrefix+"classic:128", retryName(QueueClassic, 128*time.Millisecond))

	long := groupQueueName(strings.Repeat("t", 200), strings.Repeat("g", 200))
	assert.Len(t, long, 255)
	assert.Equal(t, strings.Repeat("t", 200)+":"+strings.Repeat("g", 37)+"~", long[:239])
	assert.NotEqual(t, long, groupQueueName(strings.Repeat("t", 200), strings.Repeat("g", 199)), "shortened names stay distinct")
	assert.Len(t, deadQueueName(strings.Repeat("t", 200), strings.Repeat("g", 200)), 255)
	assert.NotEqual(t, long, deadQueueName(strings.Repeat("t", 200), strings.Repeat("g", 200)))
}

// TestNamesInjective: no two (topic, group) pairs, and no group and a
// dead-letter or retry object, map to the same queue (DESIGN line 1), for
// names built to collide under a '.' separator.
func TestNamesInjective(t *testing.T) {
	topics := []string{"a", "a.b", "a.b.c", "a.dead", "a.b.dead", "dead", "switchyard", "switchyard.retry", "a-b", "a_b", strings.Repeat("x", 200)}
	groups := []string{"b", "c", "b.c", "dead", "c.dead", "b.c.dead", "retry.128", "quorum.128", "g", strings.Repeat("y", 200), strings.Repeat("y", 199)}
	seen := map[string]string{}
	add := func(name, what string) {
		if prev, ok := seen[name]; ok {
			t.Errorf("%s and %s both map to %q", prev, what, name)
		}
		seen[name] = what
	}
	for _, topic := range topics {
		add(exchangeName(topic), "exchange of "+topic)
		for _, group := range groups {
			add(groupQueueName(topic, group), "queue of "+topic+"/"+group)
			add(deadQueueName(topic, group), "dead letters of "+topic+"/"+group)
		}
	}
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		for _, b := range allBuckets() {
			add(retryName(qt, b), "retry queue "+string(qt)+" "+b.String())
		}
	}
}

func TestQueueArgs(t *testing.T) {
	assert.Equal(t, amqp.Table{
		"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "t:g:dead",
		"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
	}, groupQueueArgs(QueueQuorum, "t:g:dead"))
	assert.Equal(t, amqp.Table{
		"x-queue-type": "classic", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "t:g:dead", "x-overflow": "reject-publish",
	}, groupQueueArgs(QueueClassic, "t:g:dead"))
	assert.Equal(t, amqp.Table{"x-queue-type": "classic", "x-max-length": int64(7), "x-overflow": "reject-publish"}, deadQueueArgs(7))

	q := retryQueueArgs(QueueQuorum, 128*time.Millisecond)
	assert.Equal(t, amqp.Table{
		"x-queue-type": "quorum", "x-message-ttl": int64(128), "x-dead-letter-exchange": "", "x-expires": int64(128 + 10*60*1000),
	}, q, "expired copies go back by their own routing key; at-most-once dead-lettering")
	assert.NotContains(t, q, "x-dead-letter-routing-key")
	assert.Equal(t, "classic", retryQueueArgs(QueueClassic, time.Second)["x-queue-type"])
}
