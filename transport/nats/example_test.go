package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/nats"
)

// Open a broker from a URL, create a consumer group, publish and consume.
// (It needs a NATS server with JetStream at localhost:4222, so it is
// compiled but not run.)
func Example() {
	ctx := context.Background()
	u, err := url.Parse("nats://localhost:4222?replicas=1&ack_wait=1m")
	if err != nil {
		log.Fatal(err)
	}
	b, err := nats.OpenURL(ctx, u)
	if err != nil {
		log.Fatal(err) // names localhost:4222, never a password or token
	}
	defer b.Close()

	// A stream keeps a topic's messages for the groups that exist: create
	// the group (the durable consumer "billing" of stream
	// "switchyard_orders") before publishing.
	if err := b.CreateGroup(ctx, "orders", "billing"); err != nil {
		log.Fatal(err)
	}
	// Publish returns once the stream stored both messages.
	if err := b.Publish(ctx, "orders", pubsub.NewMessage([]byte("order 1")), pubsub.NewMessage([]byte("order 2"))); err != nil {
		log.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, "orders", "billing", func(ctx context.Context, m *pubsub.Message) error {
		fmt.Printf("%s (attempt %d)\n", m.Payload, m.Attempt)
		return nil // ack; an error retries after a backoff, on the server
	}, pubsub.WithConcurrency(20), pubsub.WithBackoff(time.Second, time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := sub.Close(); err != nil {
		log.Print(err)
	}
}

// Configure a broker for a three-server cluster in code, and read
// JetStream's refusals with errors.As.
func ExampleNew() {
	ctx := context.Background()
	b, err := nats.New(ctx, nats.Config{
		URL:       "tls://n1.example.com,n2.example.com,n3.example.com",
		CredsFile: "/etc/switchyard/orders.creds",
		Namespace: "orders",
		Replicas:  3,
		MaxBytes:  10 << 30, // Publish waits, then fails, when a topic holds 10 GiB
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	err = b.Publish(ctx, "created", pubsub.NewMessage([]byte("{}")))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		log.Printf("JetStream refused: code %d, error code %d", apiErr.Code, apiErr.ErrorCode)
	}
}
