package watermillbridge_test

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/rabbitmq"
)

// TestWatermillSuiteRabbitMQ runs watermill's own Pub/Sub test suite
// through the bridge over RabbitMQ (SWITCHYARD_AMQP_URL, default
// brokertest.DefaultAMQPURL; skipped when it is down, failed under CI=true).
//
// Each instance of the suite's Publisher and Subscriber has a broker, so
// AMQP connections, of its own, closed when its subtest ends: the members
// of a group compete across connections, as separate processes would. The
// suite runs its short variants (ForceShort, which watermill offers for
// slow Pub/Subs) to spare the shared RabbitMQ's file descriptors: at full
// size about 160 connections are open at once (measured; about 30 in the
// short variants). The short variants have TestConcurrentSubscribe use 10
// Subscribers and 100 messages instead of 50 and 5000,
// TestConcurrentSubscribeMultipleTopics 10 topics of 50 messages instead of
// 20 of 100, TestContinueAfterSubscribeClose 50 messages in 2 batches
// instead of 5000 in 5, TestContinueAfterErrors 5 Nacks by 1 Subscriber
// instead of 100 by 3, and TestPublisherClose 100 messages instead of
// 10000. At the end the groups the suite created are deleted, then the
// topics' exchanges (named after the topics).
func TestWatermillSuiteRabbitMQ(t *testing.T) {
	rawURL := brokertest.AMQPURL(t)
	open := func(t *testing.T) *pubsub.Client {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := rabbitmq.New(ctx, rabbitmq.Config{URL: rawURL}, pubsub.WithLogger(nil))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, b.Close()) })
		return b
	}
	admin := open(t)
	runWatermillSuite(t, suiteHarness{
		open:  open,
		admin: admin,
		deleteTopics: func(t *testing.T, topics []string) {
			deleteExchanges(t, admin, topics)
		},
	}, suiteFeatures(true))
}

// deleteExchanges deletes the exchanges of topics through b's AMQP
// connection. A topic's exchange is named after the topic (see
// transport/rabbitmq's Topic mapping); deleting one that does not exist
// succeeds.
func deleteExchanges(t *testing.T, b *pubsub.Client, topics []string) {
	var conn *amqp.Connection
	if !b.As(&conn) || conn == nil {
		t.Errorf("cannot delete the exchanges of %d topics: no AMQP connection", len(topics))
		return
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cannot delete the exchanges of %d topics: %v", len(topics), err)
		return
	}
	defer ch.Close()
	for _, topic := range topics {
		if err := ch.ExchangeDelete(topic, false, false); err != nil {
			t.Errorf("delete exchange %s: %v", topic, err)
			return
		}
	}
	t.Logf("deleted the exchanges of %d topics", len(topics))
}
