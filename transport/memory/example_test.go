package memory_test

import (
	"context"
	"fmt"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// Two members of one group share its messages; the message published before
// any member ran was kept because the group was created first.
func ExampleNew() {
	ctx := context.Background()
	b, err := memory.New(memory.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	if err := b.CreateGroup(ctx, "jobs", "workers"); err != nil {
		panic(err)
	}
	if err := b.Publish(ctx, "jobs", &pubsub.Message{ID: "job-1", Payload: []byte("resize image")}); err != nil {
		panic(err)
	}
	done := make(chan string)
	sub, err := b.Subscribe(ctx, "jobs", "workers", func(_ context.Context, m *pubsub.Message) error {
		done <- m.ID + ": " + string(m.Payload)
		return nil
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	fmt.Println(<-done)
	// Output: job-1: resize image
}
