package watermillbridge_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/assert"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/watermillbridge"
)

// suiteGroup is the consumer group of the Subscribers that watermill's
// PubSubConstructor makes. The suite treats those as instances of one
// consumer: TestConcurrentSubscribe reads one topic with many of them and
// expects every message once among them all, TestContinueAfterSubscribeClose
// reads a topic in batches with a new instance each time and expects nothing
// lost. So they are members of one group; TestConsumerGroups gets groups of
// its own through the ConsumerGroupPubSubConstructor.
const suiteGroup = "watermill-suite"

// suiteSubscribeOptions are the options of every Subscriber in the suite.
//
//   - WithMaxAttempts(1000): watermill's Subscribers redeliver a Nacked
//     message without limit, and its suite relies on it:
//     TestContinueAfterErrors (without -short) Nacks 3 x 100 times over 50
//     messages and then expects all 50. Switchyard dead-letters a message
//     after MaxAttempts failures (default 5), which fails that test; with
//     1000 no message of the suite can reach the limit (at most 301
//     attempts). TestNackDeadLettersAfterMaxAttempts checks the limit.
//   - WithBackoff(10ms, 200ms): a Nacked message waits out a backoff
//     before it comes again (default 100ms doubling up to 30s), while the
//     suite waits at most 15s for the next message; short delays keep every
//     redelivery inside watermill's timeouts and the suite quick.
var suiteSubscribeOptions = []pubsub.SubscribeOption{
	pubsub.WithMaxAttempts(1000),
	pubsub.WithBackoff(10*time.Millisecond, 200*time.Millisecond),
}

// suiteFeatures are the watermill features of the bridge, the same over
// every transport (the package doc's Guarantees say why); forceShort runs
// the suite's smaller variants, which watermill offers for slow Pub/Subs.
func suiteFeatures(forceShort bool) tests.Features {
	return tests.Features{
		// Every group receives every message published after it was
		// created; the members of one group share its messages.
		ConsumerGroups: true,
		// At-least-once: a Nacked message, or one handed back by Close,
		// comes again.
		ExactlyOnceDelivery: false,
		// No order among messages without a Key (the suite sets none), and
		// Subscriptions run pubsub.WithConcurrency (default 10) at once;
		// a Nacked message comes back after later ones. This skips
		// TestPublishSubscribeInOrder and TestNoAck.
		GuaranteedOrder:                     false,
		GuaranteedOrderWithSingleSubscriber: false,
		// A group keeps its messages while no member runs, for the next
		// Subscriber of that group.
		Persistent: true,
		// The suite's reconnect test restarts the broker with this command.
		// Memory has no server, and these tests never restart a shared
		// broker; reconnecting is the transports' work, not the bridge's
		// (see the package doc), and their own packages test it (RabbitMQ's
		// behind the brokerrestart tag). This skips TestReconnect.
		RestartServiceCommand: nil,
		// Subscribers of one group on separate brokers share it.
		RequireSingleInstance: false,
		// A group is a queue, not a log: a new group gets only what is
		// published after it was created, and acked messages are gone.
		// This skips TestNewSubscriberReceivesOldMessages.
		NewSubscriberReceivesOldMessages: false,
		ForceShort:                       forceShort,
		// A published message's context does not travel through a broker.
		ContextPreserved: false,
	}
}

// suiteHarness is what runWatermillSuite needs of a transport.
type suiteHarness struct {
	// open returns the broker that one instance of the suite's Publisher
	// and Subscriber uses; if the broker is its own, open closes it when t
	// ends.
	open func(t *testing.T) *pubsub.Client
	// admin deletes the groups that the suite created, once every subtest
	// has ended; it stays open.
	admin pubsub.GroupDeleter
	// deleteTopics, when set, then deletes what the transport keeps of the
	// suite's topics (a RabbitMQ exchange) once their groups are gone.
	deleteTopics func(t *testing.T, topics []string)
	// maxAttempts, when not 0, replaces suiteSubscribeOptions' 1000 (Pub/Sub
	// allows at most 100; its run uses the short variants, which Nack each
	// message a few times at most).
	maxAttempts int
}

// runWatermillSuite runs watermill's tests.TestPubSub through the bridge,
// with features, over the brokers of h, then deletes what the suite
// created: every group it created or joined (each must exist), and its
// topics if h.deleteTopics is set.
func runWatermillSuite(t *testing.T, h suiteHarness, features tests.Features) {
	rec := &recorder{}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		groups, topics := rec.all()
		for _, g := range groups {
			assert.NoError(t, h.admin.DeleteGroup(ctx, g.topic, g.group), "delete group %s of %s", g.group, g.topic)
		}
		t.Logf("deleted the %d groups that the suite created on %d topics", len(groups), len(topics))
		if h.deleteTopics != nil {
			h.deleteTopics(t, topics)
		}
	})
	newPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		b := recordingBroker{Client: h.open(t), rec: rec}
		opts := suiteSubscribeOptions
		if h.maxAttempts != 0 {
			opts = append(slices.Clip(opts), pubsub.WithMaxAttempts(h.maxAttempts))
		}
		return watermillbridge.NewPublisher(b), watermillbridge.NewSubscriber(b, group, opts...)
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return newPubSub(t, suiteGroup) },
		newPubSub)
}

// recordingBroker is a broker that records the topics it publishes to and
// the groups it creates or joins, so that the suite can delete them.
type recordingBroker struct {
	*pubsub.Client
	rec *recorder
}

// Publish implements pubsub.Publisher.
func (b recordingBroker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	b.rec.add(topic, "")
	return b.Client.Publish(ctx, topic, msgs...)
}

// CreateGroup implements pubsub.GroupCreator.
func (b recordingBroker) CreateGroup(ctx context.Context, topic, group string) error {
	err := b.Client.CreateGroup(ctx, topic, group)
	if err == nil {
		b.rec.add(topic, group)
	}
	return err
}

// Subscribe implements pubsub.Subscriber.
func (b recordingBroker) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	sub, err := b.Client.Subscribe(ctx, topic, group, h, opts...)
	if err == nil {
		b.rec.add(topic, group)
	}
	return sub, err
}

// recorder is a set of topics and of (topic, group) pairs, safe for
// concurrent use.
type recorder struct {
	mu     sync.Mutex
	topics map[string]bool
	groups map[topicGroup]bool
}

type topicGroup struct{ topic, group string }

// add records topic, and group of topic unless group is "".
func (r *recorder) add(topic, group string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.topics == nil {
		r.topics, r.groups = map[string]bool{}, map[topicGroup]bool{}
	}
	r.topics[topic] = true
	if group != "" {
		r.groups[topicGroup{topic, group}] = true
	}
}

func (r *recorder) all() (groups []topicGroup, topics []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for g := range r.groups {
		groups = append(groups, g)
	}
	for t := range r.topics {
		topics = append(topics, t)
	}
	return groups, topics
}
