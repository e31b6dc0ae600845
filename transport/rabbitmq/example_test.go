package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/rabbitmq"
)

// Open a broker from a URL, create a consumer group, publish and consume.
// (It needs a RabbitMQ at localhost:5672, so it is compiled but not run.)
func Example() {
	ctx := context.Background()
	u, err := url.Parse("amqp://guest:guest@localhost:5672/?confirm_timeout=10s")
	if err != nil {
		log.Fatal(err)
	}
	b, err := rabbitmq.OpenURL(ctx, u)
	if err != nil {
		log.Fatal(err) // names localhost:5672, never the password
	}
	defer b.Close()

	// Without a group, RabbitMQ drops what is published to a topic: create
	// the group (the durable quorum queue "orders:billing", with its dead
	// letters in "orders:billing:dead") first.
	if err := b.CreateGroup(ctx, "orders", "billing"); err != nil {
		log.Fatal(err)
	}
	// Publish returns once RabbitMQ confirmed both messages.
	if err := b.Publish(ctx, "orders", pubsub.NewMessage([]byte("order 1")), pubsub.NewMessage([]byte("order 2"))); err != nil {
		log.Fatal(err)
	}

	sub, err := b.Subscribe(ctx, "orders", "billing", func(ctx context.Context, m *pubsub.Message) error {
		fmt.Printf("%s (attempt %d)\n", m.Payload, m.Attempt)
		return nil // ack; an error retries through the shared retry queues
	}, pubsub.WithConcurrency(20), pubsub.WithBackoff(time.Second, time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := sub.Close(); err != nil {
		log.Print(err)
	}
}

// Configure a broker in code, with classic queues, and read RabbitMQ's
// refusals with errors.As.
func ExampleNew() {
	ctx := context.Background()
	b, err := rabbitmq.New(ctx, rabbitmq.Config{
		URL:             "amqp://guest:guest@localhost:5672/",
		QueueType:       rabbitmq.QueueClassic,
		ConfirmTimeout:  5 * time.Second,
		DeadLetterLimit: 10_000,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	err = b.CreateGroup(ctx, "payments", "ledger")
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.PreconditionFailed {
		log.Fatal("payments:ledger exists with another queue type: ", amqpErr.Reason)
	}
}

// Look at a group's dead letters, replay one and purge the rest.
func Example_deadLetters() {
	ctx := context.Background()
	b, err := rabbitmq.New(ctx, rabbitmq.Config{URL: "amqp://guest:guest@localhost:5672/"})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	dead, err := b.ListDeadLetters(ctx, "orders", "billing", 10) // oldest first, left in place
	if err != nil {
		log.Fatal(err) // pubsub.ErrNotFound for an unknown group
	}
	for _, m := range dead {
		fmt.Println(m.ID, m.Metadata[pubsub.MetadataDeadLetterReason])
	}
	if len(dead) > 0 {
		// Back to orders:billing only, with Attempt 1.
		if _, err := b.ReplayDeadLetters(ctx, "orders", "billing", dead[0].ID); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := b.PurgeDeadLetters(ctx, "orders", "billing"); err != nil {
		log.Fatal(err)
	}
}

// Reach the underlying amqp091 connection for what Switchyard does not do.
func ExampleNew_as() {
	ctx := context.Background()
	b, err := rabbitmq.New(ctx, rabbitmq.Config{URL: "amqp://guest:guest@localhost:5672/"})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	var conn *amqp.Connection
	if b.As(&conn) && conn != nil {
		fmt.Println(conn.ConnectionState().ServerName)
	}
}
