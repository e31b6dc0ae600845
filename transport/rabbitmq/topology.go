package rabbitmq

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// maxNameBytes is the longest exchange or queue name AMQP 0-9-1 allows.
const maxNameBytes = 255

// amqpName returns name if it fits AMQP's 255-byte limit, and otherwise its
// first 238 bytes, "~" and 16 hex digits of its SHA-256: a unique name that
// fits. "~" cannot occur in topic or group names, so a shortened name never
// equals an unshortened one.
func amqpName(name string) string {
	if len(name) <= maxNameBytes {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxNameBytes-17] + "~" + hex.EncodeToString(sum[:8])
}

// exchangeName is the fanout exchange of a topic. Topic names are at most
// 200 bytes, so they are used as they are.
func exchangeName(topic string) string { return topic }

// groupQueueName is the queue of consumer group group of topic.
func groupQueueName(topic, group string) string { return amqpName(topic + "." + group) }

// retryQueueName is the retry queue of a group queue for one delay bucket.
func retryQueueName(groupQueue string, bucket time.Duration) string {
	return amqpName(groupQueue + ".retry." + strconv.FormatInt(bucket.Milliseconds(), 10))
}

// maxRetryDelay caps retry delays: RabbitMQ's x-message-ttl and x-expires are
// 32-bit millisecond counts.
const maxRetryDelay = 24 * time.Hour

// retryBucket rounds a retry delay up to the next bucket: whole milliseconds
// of the form ceil(2^(i/2)) (1, 2, 3, 4, 6, 8, 12, 16, 23, 32, 46, 64, 91,
// 128, 182, 256, ... ms), so that a delay d becomes at most √2·d + 1ms and
// a group uses at most 2 buckets per doubling of its backoff range. Delays
// under 1ms take the 1ms bucket; delays over maxRetryDelay are capped.
func retryBucket(d time.Duration) time.Duration {
	d = min(d, maxRetryDelay)
	ms := float64(d) / float64(time.Millisecond)
	if ms <= 1 {
		return time.Millisecond
	}
	// Smallest i with 2^(i/2) >= ms; then check the neighbours, since the
	// bucket value is rounded up to whole milliseconds.
	i := int(math.Ceil(2 * math.Log2(ms)))
	for i > 0 && bucketValue(i-1) >= ms {
		i--
	}
	for bucketValue(i) < ms {
		i++
	}
	return time.Duration(bucketValue(i)) * time.Millisecond
}

func bucketValue(i int) float64 { return math.Ceil(math.Exp2(float64(i) / 2)) }

// retryQueueExpiry is how long an unused retry queue lives after its last
// declaration: its TTL plus retryQueueSlack. Retry queues are re-declared
// before use at least every retryRedeclareEvery, which is far below the
// slack, so a queue never expires with a message in it.
func retryQueueExpiry(bucket time.Duration) time.Duration { return bucket + retryQueueSlack }

const (
	retryQueueSlack     = 10 * time.Minute
	retryRedeclareEvery = time.Minute
)

// groupQueueArgs are the arguments of a group queue.
func groupQueueArgs(qt QueueType) amqp.Table {
	return amqp.Table{amqp.QueueTypeArg: string(qt)}
}

// retryQueueArgs are the arguments of a retry queue: messages wait bucket,
// then are dead-lettered through the default exchange back to groupQueue;
// the queue deletes itself when unused. Quorum retry queues dead-letter
// at-least-once, which needs overflow reject-publish.
func retryQueueArgs(qt QueueType, groupQueue string, bucket time.Duration) amqp.Table {
	args := amqp.Table{
		amqp.QueueTypeArg:           string(qt),
		amqp.QueueMessageTTLArg:     bucket.Milliseconds(),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": groupQueue,
		amqp.QueueTTLArg:            retryQueueExpiry(bucket).Milliseconds(),
	}
	if qt == QueueQuorum {
		args["x-dead-letter-strategy"] = "at-least-once"
		args[amqp.QueueOverflowArg] = amqp.QueueOverflowRejectPublish
	}
	return args
}

// declareGroup declares topic's exchange and group's queue, bound to it. It
// is idempotent.
func declareGroup(ch *amqp.Channel, qt QueueType, topic, group string) error {
	if err := ch.ExchangeDeclare(exchangeName(topic), amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return err
	}
	q := groupQueueName(topic, group)
	if _, err := ch.QueueDeclare(q, true, false, false, false, groupQueueArgs(qt)); err != nil {
		return err
	}
	return ch.QueueBind(q, "", exchangeName(topic), false, nil)
}
