package rabbitmq

import (
	"math"
	"strings"
	"testing"
	"time"

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
	assert.Less(t, len(seen), 60, "buckets from 1ms to 24h")
	// The default backoff (50ms..30s) uses 19 buckets.
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
	assert.Equal(t, "orders.billing", groupQueueName("orders", "billing"))
	assert.Equal(t, "orders.billing.retry.128", retryQueueName("orders.billing", 128*time.Millisecond))

	long := groupQueueName(strings.Repeat("t", 200), strings.Repeat("g", 200))
	assert.Len(t, long, 255)
	assert.Equal(t, strings.Repeat("t", 200)+"."+strings.Repeat("g", 37)+"~", long[:239])
	assert.NotEqual(t, long, groupQueueName(strings.Repeat("t", 200), strings.Repeat("g", 199)), "shortened names stay distinct")
	assert.Len(t, retryQueueName(long, time.Second), 255)
}

func TestRetryQueueArgs(t *testing.T) {
	q := retryQueueArgs(QueueQuorum, "t.g", 128*time.Millisecond)
	assert.Equal(t, "quorum", q["x-queue-type"])
	assert.Equal(t, int64(128), q["x-message-ttl"])
	assert.Equal(t, "", q["x-dead-letter-exchange"])
	assert.Equal(t, "t.g", q["x-dead-letter-routing-key"])
	assert.Equal(t, int64(128+10*60*1000), q["x-expires"])
	assert.Equal(t, "at-least-once", q["x-dead-letter-strategy"])
	assert.Equal(t, "reject-publish", q["x-overflow"])

	c := retryQueueArgs(QueueClassic, "t.g", time.Second)
	assert.Equal(t, "classic", c["x-queue-type"])
	assert.NotContains(t, c, "x-dead-letter-strategy")
	assert.NotContains(t, c, "x-overflow")
}
