package e2e_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/examples/events"
	"github.com/switchyard-go/switchyard/pubsub"
)

// e2eTopics and e2eGroups are every topic and consumer group the services
// may create.
var (
	e2eTopics = []string{events.UserActivityTopic, events.ExportRequestedTopic, events.ExportCompletedTopic, events.ExportFailedTopic,
		events.ExportProgressTopic, events.DeliveryReportTopic}
	e2eGroups = []string{events.GroupAudit, events.GroupAnalytics, events.GroupNotifier, events.GroupExporter}
)

// cleanupTopology deletes what the test's namespace made on the broker,
// so that runs do not pile up queues, exchanges and streams (RabbitMQ here
// has few file descriptors). Groups go through the public API
// (pubsub.GroupDeleter: a group's queue or subscription with its dead
// letters); what the API does not remove goes through the broker's own
// client (Broker.As): RabbitMQ's topic exchanges, Pub/Sub's topics, and on
// NATS the streams of the test's own NATS namespace. It fails the test when
// something cannot be deleted.
func cleanupTopology(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := openBroker(ctx, e.url)
	if err != nil {
		t.Errorf("cleanup: open broker: %v", err)
		return
	}
	defer b.Close()
	gd := b.(pubsub.GroupDeleter)
	deleted := 0
	for _, base := range e2eTopics {
		for _, g := range e2eGroups {
			err := gd.DeleteGroup(ctx, e.ns.Topic(base), g)
			switch {
			case err == nil:
				deleted++
			case !errors.Is(err, pubsub.ErrNotFound):
				t.Errorf("cleanup: delete group %s of %s: %v", g, e.ns.Topic(base), err)
			}
		}
	}
	as, _ := b.(interface{ As(any) bool })
	switch {
	case strings.HasPrefix(e.url, "amqp"):
		var conn *amqp.Connection
		if as == nil || !as.As(&conn) {
			t.Errorf("cleanup: no AMQP connection from %T", b)
			return
		}
		for _, base := range e2eTopics {
			ch, err := conn.Channel()
			if err != nil {
				t.Errorf("cleanup: %v", err)
				return
			}
			if err := ch.ExchangeDelete(e.ns.Topic(base), false, false); err != nil {
				t.Errorf("cleanup: delete exchange %s: %v", e.ns.Topic(base), err)
			}
			_ = ch.Close()
		}
	case strings.HasPrefix(e.url, "nats"):
		var js jetstream.JetStream
		if as == nil || !as.As(&js) {
			t.Errorf("cleanup: no JetStream from %T", b)
			return
		}
		_, query, _ := strings.Cut(e.url, "?namespace=")
		ns, _, _ := strings.Cut(query, "&")
		names := js.StreamNames(ctx)
		var streams []string
		for n := range names.Name() {
			if strings.HasPrefix(n, ns+"_") || strings.HasPrefix(n, ns+"-") {
				streams = append(streams, n)
			}
		}
		if err := names.Err(); err != nil {
			t.Errorf("cleanup: list streams: %v", err)
		}
		for _, n := range streams {
			if err := js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("cleanup: delete stream %s: %v", n, err)
			}
		}
	case strings.HasPrefix(e.url, "gcppubsub"):
		var c *gpubsub.Client
		if as == nil || !as.As(&c) {
			t.Errorf("cleanup: no Pub/Sub client from %T", b)
			return
		}
		for _, base := range e2eTopics {
			name := "projects/" + c.Project() + "/topics/" + e.ns.Topic(base)
			_ = c.TopicAdminClient.DeleteTopic(ctx, &pubsubpb.DeleteTopicRequest{Topic: name})
		}
	}
	t.Logf("cleanup: %d groups deleted", deleted)
}
