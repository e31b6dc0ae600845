package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

type OrderPlaced struct {
	OrderID string  `json:"order_id"`
	Total   float64 `json:"total"`
}

// A typed topic: publish values, subscribe with a consumer group.
func ExampleNewTopic() {
	ctx := context.Background()
	broker, _ := memory.New(memory.Config{})
	defer broker.Close()

	orders := pubsub.NewTopic[OrderPlaced]("orders")
	done := make(chan struct{})
	sub, err := orders.Subscribe(ctx, broker, "billing", func(_ context.Context, o OrderPlaced, m *pubsub.Message) error {
		fmt.Printf("billing %s: %.2f (attempt %d)\n", o.OrderID, o.Total, m.Attempt)
		close(done)
		return nil
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	if err := orders.Publish(ctx, broker, OrderPlaced{OrderID: "o-1", Total: 9.5}, pubsub.WithKey("customer-7")); err != nil {
		panic(err)
	}
	<-done
	// Output: billing o-1: 9.50 (attempt 1)
}

// Every consumer group gets every message.
func Example_fanout() {
	ctx := context.Background()
	broker, _ := memory.New(memory.Config{})
	defer broker.Close()

	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	wg.Add(3)
	for _, group := range []string{"audit", "analytics", "notifier"} {
		_, _ = broker.Subscribe(ctx, "user.activity", group, func(_ context.Context, m *pubsub.Message) error {
			mu.Lock()
			got = append(got, group+" <- "+string(m.Payload))
			mu.Unlock()
			wg.Done()
			return nil
		})
	}
	_ = broker.Publish(ctx, "user.activity", pubsub.NewMessage([]byte("signed_up")))
	wg.Wait()
	sort.Strings(got)
	for _, g := range got {
		fmt.Println(g)
	}
	// Output:
	// analytics <- signed_up
	// audit <- signed_up
	// notifier <- signed_up
}

// A failing handler is retried with backoff; after WithMaxAttempts the
// message goes to the dead-letter topic "<topic>.dlq", where the group's
// dead letters can be read with the same group name.
func Example_deadLetter() {
	ctx := context.Background()
	broker, _ := memory.New(memory.Config{})
	defer broker.Close()

	_, _ = broker.Subscribe(ctx, "payments", "ledger", func(_ context.Context, m *pubsub.Message) error {
		fmt.Println("attempt", m.Attempt)
		return errors.New("ledger unavailable")
	}, pubsub.WithMaxAttempts(3), pubsub.WithBackoff(time.Millisecond, 5*time.Millisecond), pubsub.WithLogger(nil))

	dead := make(chan *pubsub.Message)
	_, _ = broker.Subscribe(ctx, "payments.dlq", "ledger", func(_ context.Context, m *pubsub.Message) error {
		dead <- m
		return nil
	})
	_ = broker.Publish(ctx, "payments", &pubsub.Message{ID: "pay-1", Payload: []byte("{}")})
	m := <-dead
	fmt.Println(m.ID, "dead after", m.Metadata[pubsub.MetadataAttempts], "attempts:", m.Metadata[pubsub.MetadataDeadLetterReason])
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// pay-1 dead after 3 attempts: ledger unavailable
}
