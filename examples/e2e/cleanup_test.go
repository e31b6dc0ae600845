package e2e_test

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/examples/events"
)

// deleteAMQPTopology deletes, best effort, the exchanges and group queues
// the test's namespace made on RabbitMQ, so that test runs do not pile up
// queues. It knows the rabbitmq transport's naming (exchange = topic, queue =
// topic:group, its dead letters topic:group:dead).
func deleteAMQPTopology(t *testing.T, url string, ns events.Namespace) {
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	groups := []string{events.GroupAudit, events.GroupAnalytics, events.GroupNotifier, events.GroupExporter}
	for _, base := range []string{events.UserActivityTopic, events.ExportRequestedTopic, events.ExportCompletedTopic, events.ExportFailedTopic, events.ExportProgressTopic} {
		topic := ns.Topic(base)
		for _, g := range groups {
			// The rabbitmq transport's group queue and its dead letters.
			for _, q := range []string{topic + ":" + g, topic + ":" + g + ":dead"} {
				deleteOne(conn, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
			}
		}
		deleteOne(conn, func(ch *amqp.Channel) error { return ch.ExchangeDelete(topic, false, false) })
	}
}

// deleteOne runs del on a channel of its own, since a failed AMQP operation
// closes its channel.
func deleteOne(conn *amqp.Connection, del func(*amqp.Channel) error) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	_ = del(ch)
	_ = ch.Close()
}
