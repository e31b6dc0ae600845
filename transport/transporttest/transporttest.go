// Package transporttest is the conformance suite for Switchyard transports:
// one subtest or more per line of the semantics contract (DESIGN.md v2):
// names and their injective mapping, fan-out, competing consumers, durable
// groups, attempts that count handler runs, redelivery with backoff that
// does not block the group, dead letters per group with their admin API
// (list, replay to one group, purge) and parking when they cannot be
// stored, publish errors, phased shutdown with publishing during the drain,
// round trip of IDs, keys, metadata and payloads, size limits, ordering by
// key, observers and middleware, and the trace context carried through
// otelpubsub. Every transport's tests call Run against a real broker;
// Features says what a broker cannot do.
package transporttest

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Harness connects the suite to the transport under test.
type Harness struct {
	// NewBroker returns a new client of the broker under test, opened with
	// opts, as a new process would open it; every call reaches the same
	// broker, so groups are shared between clients. It registers the
	// client's Close with t.Cleanup. The client must implement
	// pubsub.DeadLetterAdmin, pubsub.GroupCreator, pubsub.GroupDeleter and
	// pubsub.Pinger, as every transport.Open broker does. Required.
	NewBroker func(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker
	// BreakDeadLetters makes storing dead letters of group of topic fail
	// until the function it returns is called (which must make storing work
	// again, keeping what was stored). Required.
	BreakDeadLetters func(t *testing.T, topic, group string) (restore func())
	// Timeout bounds each wait for deliveries. Default 15s.
	Timeout time.Duration
}

// Features states what the transport guarantees beyond the common contract.
type Features struct {
	// OrderingByKey: a group delivers the messages of one Key one at a time,
	// in publish order, even with WithConcurrency above 1.
	OrderingByKey bool
	// HandBackRepeats: a message handed back untouched may come again
	// besides its hand-back, because the broker lost the acknowledgement
	// of the original (pstest does, now and then, when a subscription
	// closes). Delivery is at least once either way; the suite then asks
	// for every handed-back message at least once instead of exactly once,
	// with its Attempt unchanged.
	HandBackRepeats bool
	// MaxMessageBytes is the size limit of the brokers NewBroker returns
	// (pubsub.Message.Size for memory; the transport's own measure
	// elsewhere). The suite publishes messages just over it. Required.
	MaxMessageBytes int
}

// Run runs the conformance suite as subtests of t. Each subtest uses topics
// of its own with random names, so runs against a shared broker do not meet.
func Run(t *testing.T, h Harness, f Features) {
	if h.NewBroker == nil || h.BreakDeadLetters == nil || f.MaxMessageBytes <= 0 {
		t.Fatal("transporttest: Harness.NewBroker, Harness.BreakDeadLetters and Features.MaxMessageBytes are required")
	}
	if h.Timeout == 0 {
		h.Timeout = 15 * time.Second
	}
	s := &suite{h: h, f: f}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"InvalidNamesRejectedBeforeIO", s.testInvalidNames},
		{"InvalidBatchSendsNothing", s.testInvalidBatch},
		{"OversizeRejected", s.testOversize},
		{"FanOutToThreeGroups", s.testFanOut},
		{"GroupGetsOnlyMessagesAfterItExists", s.testGroupStart},
		{"CompetingConsumers", s.testCompetingConsumers},
		{"DurableGroupAcrossResubscribe", s.testDurableGroup},
		{"RedeliveryWithBackoff", s.testRedelivery},
		{"PanicIsRetried", s.testPanic},
		{"RetriesDoNotBlockTheGroup", s.testRetriesDoNotBlock},
		{"AttemptUnchangedByUntouchedHandBack", s.testUntouchedHandBack},
		{"DeadLetterAfterMaxAttempts", s.testDeadLetterMaxAttempts},
		{"DeadLetterAtOnceForPermanent", s.testDeadLetterPermanent},
		{"DeadLetterToCustomTopic", s.testDeadLetterCustomTopic},
		{"DeadLettersIsolatedPerGroup", s.testDeadLettersIsolated},
		{"DeadLetterAdminListReplayPurge", s.testDeadLetterAdmin},
		{"ReplayReachesOnlyItsGroup", s.testReplayOneGroup},
		{"DeadLetterStorageFailureParks", s.testDeadLetterParked},
		{"DeleteGroup", s.testDeleteGroup},
		{"NamesDoNotCollide", s.testNamesDoNotCollide},
		{"CloseDrainsInFlight", s.testCloseDrains},
		{"ShutdownDeadlineRedelivers", s.testShutdownDeadline},
		{"PublishDuringBrokerDrain", s.testPublishDuringDrain},
		{"ContextCancelStopsSubscription", s.testContextCancel},
		{"ClosedBrokerReturnsErrClosed", s.testClosed},
		{"ObserverSeesEveryOutcome", s.testObserver},
		{"MiddlewareOrder", s.testMiddleware},
		{"RoundTrip", s.testRoundTrip},
		{"PublishSetsID", s.testPublishSetsID},
		{"ConcurrentPublishers", s.testConcurrentPublishers},
		{"OrderingByKey", s.testOrdering},
		{"TraceContextSurvivesTrip", s.testTraceContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	h Harness
	f Features
}

// ctx returns a context for one subtest, ended when it ends.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.h.Timeout)
	t.Cleanup(cancel)
	return ctx
}
