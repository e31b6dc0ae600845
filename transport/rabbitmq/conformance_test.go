package rabbitmq

import (
	"strconv"
	"testing"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/transporttest"
)

// conformanceMaxBytes is the size limit the conformance brokers are opened
// with, so that the suite's oversize messages stay small.
const conformanceMaxBytes = 1 << 20

// TestConformance runs the transport conformance suite against the real
// RabbitMQ, with quorum queues (the default) and classic queues.
func TestConformance(t *testing.T) {
	for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
		t.Run(string(qt), func(t *testing.T) {
			rawURL := testURL(t, "max_message_bytes="+strconv.Itoa(conformanceMaxBytes)+"&queue_type="+string(qt))
			rec := &recorder{}
			t.Cleanup(func() { deleteTopology(t, rawURL, rec.all()) })
			transporttest.Run(t, transporttest.Harness{
				NewBroker: func(t *testing.T) pubsub.Broker {
					return recordingBroker{Broker: openTest(t, rawURL), rec: rec}
				},
			}, transporttest.Features{MaxMessageBytes: conformanceMaxBytes})
		})
	}
}
