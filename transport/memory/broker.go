package memory

import (
	"context"
	"fmt"
	"net/url"

	"github.com/switchyard-go/switchyard/internal/lifecycle"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Broker is a handle on an in-process hub of topics and consumer groups. It
// implements pubsub.Broker, pubsub.GroupCreator and pubsub.Pinger and is safe
// for concurrent use.
type Broker struct {
	hub  *hub
	subs lifecycle.Subscriptions
}

var (
	_ pubsub.Broker       = (*Broker)(nil)
	_ pubsub.GroupCreator = (*Broker)(nil)
	_ pubsub.Pinger       = (*Broker)(nil)
)

// New returns a Broker configured by cfg (see Config for defaults), on the
// shared hub cfg.Name or, when it is empty, on a private hub.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if cfg.Name == "" {
		return &Broker{hub: newHub(cfg)}, nil
	}
	h, err := sharedHub(cfg.Name, cfg)
	if err != nil {
		return nil, err
	}
	return &Broker{hub: h}, nil
}

// OpenURL returns a Broker for a mem:// URL: mem://NAME is the shared hub
// NAME (mem:// is the hub "default"), with the query parameters
// max_message_bytes and group_capacity setting the Config fields of those
// names. Unknown parameters are an error.
func OpenURL(u *url.URL) (*Broker, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// Publish implements pubsub.Publisher. The messages are copied, so the caller
// may reuse them once it returns; it blocks only while a group of the topic is
// full (Config.GroupCapacity). A topic without groups drops what is published
// to it, as every transport does; create groups ahead with CreateGroup.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	if b.subs.Closed() {
		return pubsub.ErrClosed
	}
	if err := pubsub.ValidateTopic(topic); err != nil {
		return err
	}
	if len(msgs) > b.hub.cfg.GroupCapacity {
		return fmt.Errorf("memory: batch of %d messages is more than a group holds (%d): %w", len(msgs), b.hub.cfg.GroupCapacity, pubsub.ErrMessageTooLarge)
	}
	if err := pubsub.CheckBatch("memory", topic, msgs, b.hub.cfg.MaxMessageBytes, nil); err != nil {
		return err
	}
	pubsub.AssignIDs(msgs)
	stored := make([]*pubsub.Message, len(msgs))
	for i, m := range msgs {
		c := m.Clone()
		c.Attempt = 0
		stored[i] = c
	}
	return b.hub.publish(ctx, topic, stored)
}

// CreateGroup implements pubsub.GroupCreator: from now on the group keeps the
// topic's messages for its members. It does not block.
func (b *Broker) CreateGroup(_ context.Context, topic, group string) error {
	if b.subs.Closed() {
		return pubsub.ErrClosed
	}
	if err := pubsub.ValidateTopic(topic); err != nil {
		return err
	}
	if err := pubsub.ValidateGroup(group); err != nil {
		return err
	}
	b.hub.group(topic, group)
	return nil
}

// Subscribe implements pubsub.Subscriber. Ordering: a group delivers the
// messages of one Key one at a time, in publish order, across all its
// members; a failed message holds its key back until it is redelivered.
func (b *Broker) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	cfg, err := pubsub.NewSubscribeConfig(topic, group, opts...)
	if err != nil {
		return nil, err
	}
	return b.subs.Start(func(onStop func()) (*pubsub.Subscription, error) {
		r := newReceiver(b.hub.group(topic, group))
		return pubsub.StartSubscription(ctx, cfg, r, b, h, onStop)
	})
}

// Ping implements pubsub.Pinger: an in-process broker is always ready until
// it is closed. It does not block.
func (b *Broker) Ping(context.Context) error {
	if b.subs.Closed() {
		return pubsub.ErrClosed
	}
	return nil
}

// Close closes every Subscription made through this handle, waiting for
// each to drain, and makes later calls return pubsub.ErrClosed. The hub and
// its groups stay, for other handles and later Opens. Close is idempotent.
func (b *Broker) Close() error { return b.subs.Close() }
