package transport_test

import (
	"context"
	"fmt"
	"os"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// The broker is configuration: the same code runs on mem://, amqp:// or
// gcppubsub:// depending on PUBSUB_URL.
func ExampleOpen() {
	ctx := context.Background()
	url := os.Getenv("PUBSUB_URL")
	if url == "" {
		url = "mem://"
	}
	broker, err := transport.Open(ctx, url)
	if err != nil {
		panic(err)
	}
	defer broker.Close()

	got := make(chan string)
	sub, err := broker.Subscribe(ctx, "greetings", "printer", func(_ context.Context, m *pubsub.Message) error {
		got <- string(m.Payload)
		return nil
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	if err := broker.Publish(ctx, "greetings", pubsub.NewMessage([]byte("hello"))); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: hello
}
