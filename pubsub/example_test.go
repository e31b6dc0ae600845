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
// message is stored in its group's dead letters, which an operator lists,
// and replays once the cause is fixed (or purges).
func Example_deadLetter() {
	ctx := context.Background()
	settled := make(chan pubsub.Outcome, 10)
	broker, _ := memory.New(memory.Config{}, pubsub.WithLogger(nil), pubsub.WithObserver(pubsub.Observer{
		OnSettle: func(_ context.Context, st pubsub.Settlement) { settled <- st.Outcome },
	}))
	defer broker.Close()

	ledgerUp := false
	_, _ = broker.Subscribe(ctx, "payments", "ledger", func(_ context.Context, m *pubsub.Message) error {
		fmt.Println("attempt", m.Attempt)
		if !ledgerUp {
			return errors.New("ledger unavailable")
		}
		return nil
	}, pubsub.WithMaxAttempts(3), pubsub.WithBackoff(time.Millisecond, 5*time.Millisecond), pubsub.WithConcurrency(1))
	_ = broker.Publish(ctx, "payments", &pubsub.Message{ID: "pay-1", Payload: []byte("{}")})
	for o := range settled {
		if o == pubsub.OutcomeDeadLettered {
			break
		}
	}
	dead, _ := broker.ListDeadLetters(ctx, "payments", "ledger", 10)
	for _, m := range dead {
		fmt.Println(m.ID, "dead after", m.Metadata[pubsub.MetadataAttempts], "attempts:", m.Metadata[pubsub.MetadataDeadLetterReason])
	}

	ledgerUp = true // the cause is fixed: send the dead letters back to the group
	n, _ := broker.ReplayDeadLetters(ctx, "payments", "ledger")
	fmt.Println("replayed", n)
	<-settled
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// pay-1 dead after 3 attempts: ledger unavailable
	// replayed 1
	// attempt 1
}
