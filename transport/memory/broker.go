package memory

import (
	"context"
	"fmt"
	"maps"
	"net/url"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// New returns a broker configured by cfg (see Config for defaults), on the
// shared hub cfg.Name or, when it is empty, on a private hub. opts configure
// the portable layer (logger, subscription defaults, middleware,
// observers). It does not block.
func New(cfg Config, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return pubsub.NewClient(context.Background(), func(context.Context, driver.Env) (driver.Broker, error) {
		if cfg.Name == "" {
			return &broker{hub: newHub(cfg)}, nil
		}
		h, err := sharedHub(cfg.Name, cfg)
		if err != nil {
			return nil, err
		}
		return &broker{hub: h}, nil
	}, opts...)
}

// OpenURL returns a broker for a mem:// URL: mem://NAME is the shared hub
// NAME (mem:// is the hub "default"), with the query parameters
// max_message_bytes, group_capacity and dead_letter_capacity setting the
// Config fields of those names. Unknown parameters are an error.
func OpenURL(u *url.URL, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return New(cfg, opts...)
}

// broker is the memory driver: a handle on a hub.
type broker struct {
	hub *hub
}

// ValidateNames implements driver.Broker: memory takes every valid name.
func (b *broker) ValidateNames(string, string) error { return nil }

// CheckMessage implements driver.Broker.
func (b *broker) CheckMessage(m *driver.Message) error {
	if n := driver.Size(m); n > b.hub.cfg.MaxMessageBytes {
		return fmt.Errorf("memory: message is %d bytes, over the limit of %d (max_message_bytes): %w", n, b.hub.cfg.MaxMessageBytes, driver.ErrMessageTooLarge)
	}
	return nil
}

// SendBatch implements driver.Broker. The messages are copied; it blocks
// only while a group of the topic is full (Config.GroupCapacity). A topic
// without groups drops what is published to it, as every transport does.
func (b *broker) SendBatch(ctx context.Context, topic string, msgs []*driver.Message) error {
	if len(msgs) > b.hub.cfg.GroupCapacity {
		return fmt.Errorf("memory: batch of %d messages is more than a group holds (%d): %w", len(msgs), b.hub.cfg.GroupCapacity, driver.ErrMessageTooLarge)
	}
	return b.hub.publish(ctx, topic, copyBatch(msgs))
}

// CreateGroup implements driver.Broker: from now on the group keeps the
// topic's messages for its members. It does not block.
func (b *broker) CreateGroup(_ context.Context, topic, group string) error {
	b.hub.group(topic, group)
	return nil
}

// DeleteGroup implements driver.Broker: the group, its messages and its dead
// letters are gone; its members receive nothing more.
func (b *broker) DeleteGroup(_ context.Context, topic, group string) error {
	return b.hub.deleteGroup(topic, group)
}

// Subscribe implements driver.Broker. Ordering: a group delivers the
// messages of one Key one at a time, in publish order, across all its
// members; a failed message holds its key back until it is redelivered.
func (b *broker) Subscribe(_ context.Context, topic, group string, _ driver.SubscribeConfig) (driver.Subscription, error) {
	return newReceiver(b.hub.group(topic, group)), nil
}

// Ping implements driver.Broker: an in-process broker is always ready.
func (b *broker) Ping(context.Context) error { return nil }

// Close implements driver.Broker. The hub and its groups stay, for other
// handles and later Opens.
func (b *broker) Close() error { return nil }

// As implements driver.Broker: memory has nothing underneath to expose.
func (b *broker) As(any) bool { return false }

// copyBatch returns deep copies of msgs, with Attempt 0, in two
// allocations besides the metadata maps: one for the messages, one for all
// their payloads.
func copyBatch(msgs []*driver.Message) []driver.Message {
	n := 0
	for _, m := range msgs {
		n += len(m.Payload)
	}
	payloads := make([]byte, 0, n)
	copies := make([]driver.Message, len(msgs))
	for i, m := range msgs {
		c := &copies[i]
		*c = driver.Message{ID: m.ID, Key: m.Key}
		if m.Metadata != nil {
			c.Metadata = maps.Clone(m.Metadata)
		}
		if m.Payload != nil {
			start := len(payloads)
			payloads = append(payloads, m.Payload...)
			c.Payload = payloads[start:len(payloads):len(payloads)]
		}
	}
	return copies
}

// clone returns a deep copy of m with Attempt set to attempt.
func clone(m *driver.Message, attempt int) *driver.Message {
	c := (*driver.Message)((*pubsub.Message)(m).Clone())
	c.Attempt = attempt
	return c
}
