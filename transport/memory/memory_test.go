package memory_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
	"github.com/switchyard-go/switchyard/transport/transporttest"
)

const testMaxBytes = 64 << 10

func TestConformance(t *testing.T) {
	name := "conformance-" + pubsub.NewID()
	transporttest.Run(t, transporttest.Harness{
		NewBroker: func(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker {
			b, err := memory.New(memory.Config{Name: name, MaxMessageBytes: testMaxBytes}, append([]pubsub.BrokerOption{pubsub.WithLogger(nil)}, opts...)...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
		BreakDeadLetters: func(t *testing.T, topic, group string) func() {
			return memory.BreakDeadLetters(name, topic, group)
		},
	}, transporttest.Features{OrderingByKey: true, MaxMessageBytes: testMaxBytes})
}
