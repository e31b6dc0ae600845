package watermillbridge_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/pubsub/watermillbridge"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// Watermill code consumes a Switchyard consumer group.
func ExampleNewSubscriber() {
	ctx := context.Background()
	broker, _ := memory.New(memory.Config{})
	defer broker.Close()

	sub := watermillbridge.NewSubscriber(broker, "legacy-consumer")
	defer sub.Close()
	messages, err := sub.Subscribe(ctx, "events")
	if err != nil {
		panic(err)
	}
	_ = watermillbridge.NewPublisher(broker).Publish("events", message.NewMessage("evt-1", []byte("hello")))

	m := <-messages
	fmt.Println(m.UUID, string(m.Payload), "attempt", m.Metadata.Get(watermillbridge.MetadataAttempt))
	m.Ack()
	// Output: evt-1 hello attempt 1
}

// Messages published before the first Subscribe are kept once the group
// exists.
func ExampleSubscriber_SubscribeInitialize() {
	broker, _ := memory.New(memory.Config{})
	defer broker.Close()
	sub := watermillbridge.NewSubscriber(broker, "billing")
	defer sub.Close()

	if err := sub.SubscribeInitialize("invoices"); err != nil {
		panic(err)
	}
	_ = watermillbridge.NewPublisher(broker).Publish("invoices", message.NewMessage("inv-1", []byte("42 EUR")))

	messages, err := sub.Subscribe(context.Background(), "invoices")
	if err != nil {
		panic(err)
	}
	m := <-messages
	fmt.Println(m.UUID, string(m.Payload))
	m.Ack()
	// Output: inv-1 42 EUR
}
