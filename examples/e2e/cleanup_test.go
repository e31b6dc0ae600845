package e2e_test

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/examples/events"
)

// deleteAMQPTopology deletes, best effort, the exchanges and group queues
// the test's namespace made on RabbitMQ, so that test runs do not pile up
// queues. It knows the rabbitmq transport's naming (exchange = topic, queue =
// topic.group); pubsub has no way to delete a group yet.
func deleteAMQPTopology(t *testing.T, url string, ns events.Namespace) {
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	groups := []string{events.GroupAudit, events.GroupAnalytics, events.GroupNotifier, events.GroupExporter}
	for _, base := range []string{events.UserActivityTopic, events.ExportRequestedTopic, events.ExportCompletedTopic, events.ExportFailedTopic} {
		for _, suffix := range []string{"", ".dlq", ".dlq.dlq"} {
			topic := ns.Topic(base + suffix)
			for _, g := range groups {
				deleteOne(conn, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(topic+"."+g, false, false, false); return err })
			}
			deleteOne(conn, func(ch *amqp.Channel) error { return ch.ExchangeDelete(topic, false, false) })
		}
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
