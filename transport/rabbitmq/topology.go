package rabbitmq

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Broker object names. Topic and group names hold only letters, digits and
// "._-", so a name with a ':' is never a topic's exchange, and the number
// of ':' in a name says what it is: one for a group's queue, two for a
// group's dead letters, three for a shared retry queue. This makes the
// mapping injective (DESIGN line 1).
const (
	// nameSep separates the parts of queue names; it cannot occur in topic
	// or group names.
	nameSep = ":"
	// deadSuffix ends the name of a group's dead-letter queue.
	deadSuffix = nameSep + "dead"
)

// retryPrefix starts the names of the shared retry exchanges and queues.
// Tests give their process a prefix of its own.
var retryPrefix = "switchyard" + nameSep + "retry" + nameSep

// maxNameBytes is the longest exchange or queue name AMQP 0-9-1 allows.
const maxNameBytes = 255

// amqpName returns name if it fits AMQP's 255-byte limit, and otherwise its
// first 238 bytes, "~" and 16 hex digits of its SHA-256: a name that fits
// and differs from every other (up to a 64-bit hash collision). "~" cannot
// occur in topic or group names, so a shortened name never equals an
// unshortened one.
func amqpName(name string) string {
	if len(name) <= maxNameBytes {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxNameBytes-17] + "~" + hex.EncodeToString(sum[:8])
}

// exchangeName is the fanout exchange of a topic. Topic names are at most
// 200 bytes, so they are used as they are, and other clients can publish
// to a topic by its name.
func exchangeName(topic string) string { return topic }

// groupQueueName is the queue of consumer group group of topic.
func groupQueueName(topic, group string) string { return amqpName(topic + nameSep + group) }

// deadQueueName is the queue holding the dead letters of group of topic.
func deadQueueName(topic, group string) string {
	return amqpName(topic + nameSep + group + deadSuffix)
}

// retryName is the name of the retry exchange and of the retry queue of
// queue type qt for one delay bucket. They are shared by every group of
// the virtual host; the queue type is part of the name because queues of
// one name must be declared with equal arguments.
func retryName(qt QueueType, bucket time.Duration) string {
	return retryPrefix + string(qt) + nameSep + strconv.FormatInt(bucket.Milliseconds(), 10)
}

// maxRetryDelay caps retry delays: RabbitMQ's x-message-ttl and x-expires are
// 32-bit millisecond counts.
const maxRetryDelay = 24 * time.Hour

// retryBucket rounds a retry delay up to the next bucket: whole milliseconds
// of the form ceil(2^(i/2)) (1, 2, 3, 4, 6, 8, 12, 16, 23, 32, 46, 64, 91,
// 128, 182, 256, ... ms), so that a delay d becomes at most √2·d + 1ms and
// a backoff range uses at most 2 buckets per doubling. Delays under 1ms
// take the 1ms bucket; delays over maxRetryDelay are capped.
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
// declaration: its TTL plus retryQueueSlack. Every Broker that publishes to
// a retry queue declares it again at least every retryRedeclareEvery,
// which is far below the slack, so a queue never expires with a message
// that is still waiting in it.
func retryQueueExpiry(bucket time.Duration) time.Duration { return bucket + retryQueueSlack }

const (
	retryQueueSlack     = 10 * time.Minute
	retryRedeclareEvery = time.Minute
)

// Queue arguments.
const (
	argDeadLetterExchange   = "x-dead-letter-exchange"
	argDeadLetterRoutingKey = "x-dead-letter-routing-key"
	argDeadLetterStrategy   = "x-dead-letter-strategy"
)

// groupQueueArgs are the arguments of a group queue: its type; messages
// that the broker dead-letters (past a quorum queue's delivery limit, 20
// by default on RabbitMQ 4) go to the group's dead-letter queue, at least
// once on quorum queues; and a length limit set by a policy refuses
// publishes (Publish fails) rather than dropping messages.
func groupQueueArgs(qt QueueType, deadQueue string) amqp.Table {
	args := amqp.Table{
		amqp.QueueTypeArg:       string(qt),
		argDeadLetterExchange:   "",
		argDeadLetterRoutingKey: deadQueue,
		amqp.QueueOverflowArg:   amqp.QueueOverflowRejectPublish,
	}
	if qt == QueueQuorum {
		args[argDeadLetterStrategy] = "at-least-once"
	}
	return args
}

// deadQueueArgs are the arguments of a dead-letter queue: a classic queue
// (see the package documentation for why) holding at most limit messages,
// refusing more (the publish is nacked, so dead-lettering fails and the
// message is parked).
func deadQueueArgs(limit int) amqp.Table {
	return amqp.Table{
		amqp.QueueTypeArg:     amqp.QueueTypeClassic,
		amqp.QueueMaxLenArg:   int64(limit),
		amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish,
	}
}

// retryQueueArgs are the arguments of a shared retry queue: messages wait
// bucket, then are dead-lettered through the default exchange with their
// own routing key, which is the queue of the group they came from; the
// queue deletes itself when unused. Dead-lettering is at most once (the
// default): at-least-once would keep the messages of a deleted group in
// the shared queue for ever.
func retryQueueArgs(qt QueueType, bucket time.Duration) amqp.Table {
	return amqp.Table{
		amqp.QueueTypeArg:       string(qt),
		amqp.QueueMessageTTLArg: bucket.Milliseconds(),
		argDeadLetterExchange:   "",
		amqp.QueueTTLArg:        retryQueueExpiry(bucket).Milliseconds(),
	}
}
