package transporttest_test

import (
	"testing"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
	"github.com/switchyard-go/switchyard/transport/transporttest"
)

// A transport's conformance test: a harness that opens clients of the one
// broker under test, a way to make its dead-letter storage fail, and the
// features it lacks. (Compiled, not run: Run needs the test's *testing.T;
// transport/memory/memory_test.go runs this one.)
func ExampleRun() {
	testConformance := func(t *testing.T) {
		name := "conformance-" + pubsub.NewID()
		transporttest.Run(t, transporttest.Harness{
			NewBroker: func(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker {
				b, err := memory.New(memory.Config{Name: name}, opts...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				return b
			},
			BreakDeadLetters: func(t *testing.T, topic, group string) (restore func()) {
				// Make storing this group's dead letters fail until restore:
				// memory's own test uses a test-only hook; networked
				// transports delete the group's dead-letter queue or topic.
				return func() {}
			},
		}, transporttest.Features{OrderingByKey: true, MaxMessageBytes: memory.DefaultMaxMessageBytes})
	}
	_ = testConformance
}
