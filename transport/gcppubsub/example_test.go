package gcppubsub_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"os"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// useEmulator starts pstest and points PUBSUB_EMULATOR_HOST at it, as
// examples/cmd/pubsub-emulator does for other processes; the returned
// function undoes both.
func useEmulator() (stop func()) {
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	prev, had := os.LookupEnv("PUBSUB_EMULATOR_HOST")
	os.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	return func() {
		if had {
			os.Setenv("PUBSUB_EMULATOR_HOST", prev)
		} else {
			os.Unsetenv("PUBSUB_EMULATOR_HOST")
		}
		_ = srv.Close()
	}
}

// Open a broker by URL against an emulator, join a group and publish to it.
func Example() {
	defer useEmulator()()
	ctx := context.Background()

	u, _ := url.Parse("gcppubsub://example-project")
	b, err := gcppubsub.OpenURL(ctx, u)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	got := make(chan *pubsub.Message, 1)
	_, err = b.Subscribe(ctx, "orders", "billing", func(_ context.Context, m *pubsub.Message) error {
		got <- m
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	err = b.Publish(ctx, "orders", &pubsub.Message{
		ID:       "order-1",
		Key:      "customer-7",
		Metadata: map[string]string{"region": "eu"},
		Payload:  []byte(`{"total":42}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	m := <-got
	fmt.Println(m.ID, m.Key, m.Metadata["region"], string(m.Payload), "attempt", m.Attempt)
	// Output: order-1 customer-7 eu {"total":42} attempt 1
}

// A failing handler's message comes back after its backoff with the next
// Attempt; after WithMaxAttempts it is kept in the group's own dead letters,
// which the admin calls list and replay to that group alone.
func Example_deadLetters() {
	defer useEmulator()()
	ctx := context.Background()
	b, err := gcppubsub.New(ctx, gcppubsub.Config{ProjectID: "example-project"}, pubsub.WithLogger(nil))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ledgerUp := make(chan struct{})
	done := make(chan struct{})
	_, err = b.Subscribe(ctx, "payments", "ledger", func(_ context.Context, m *pubsub.Message) error {
		select {
		case <-ledgerUp:
			fmt.Println("replayed", m.ID, "attempt", m.Attempt)
			close(done)
			return nil
		default:
			fmt.Println("attempt", m.Attempt)
			return errors.New("ledger offline")
		}
	}, pubsub.WithMaxAttempts(3), pubsub.WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Publish(ctx, "payments", &pubsub.Message{ID: "pay-9", Payload: []byte("9.99")}); err != nil {
		log.Fatal(err)
	}
	var dls []*pubsub.Message
	for len(dls) == 0 {
		time.Sleep(50 * time.Millisecond)
		if dls, err = b.ListDeadLetters(ctx, "payments", "ledger", 10); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("dead letter", dls[0].ID, "after", dls[0].Metadata[pubsub.MetadataAttempts], "attempts:", dls[0].Metadata[pubsub.MetadataDeadLetterReason])

	close(ledgerUp)
	if _, err := b.ReplayDeadLetters(ctx, "payments", "ledger"); err != nil {
		log.Fatal(err)
	}
	<-done
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// dead letter pay-9 after 3 attempts: ledger offline
	// replayed pay-9 attempt 1
}
