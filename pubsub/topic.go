package pubsub

import (
	"context"
	"fmt"
	"time"
)

// Topic is a typed view of a topic: it encodes values of T with its Codec on
// Publish and decodes them for the handler on Subscribe. A Topic is a small
// value, safe for concurrent use; make it once with NewTopic and share it.
type Topic[T any] struct {
	name string
	cfg  topicConfig
}

// TopicOption configures a Topic.
type TopicOption func(*topicConfig)

type topicConfig struct {
	codec     Codec
	source    string
	eventType string
}

// WithCodec sets the topic's Codec. Default JSON.
func WithCodec(c Codec) TopicOption { return func(tc *topicConfig) { tc.codec = c } }

// NewTopic returns the typed topic name. The name is validated when the topic
// is used (ErrInvalidTopic). Messages published through it carry CloudEvents
// attributes in their metadata (see MetadataCEID).
func NewTopic[T any](name string, opts ...TopicOption) Topic[T] {
	tc := topicConfig{codec: JSON, source: defaultSource, eventType: name}
	for _, o := range opts {
		o(&tc)
	}
	if tc.codec == nil {
		tc.codec = JSON
	}
	return Topic[T]{name: name, cfg: tc}
}

// Name returns the topic's name.
func (t Topic[T]) Name() string { return t.name }

// PublishOption configures one typed Publish.
type PublishOption func(*Message)

// WithKey sets the message's ordering key.
func WithKey(key string) PublishOption { return func(m *Message) { m.Key = key } }

// WithID sets the message's ID (default: a new random ID), for example to let
// consumers deduplicate a publish that is retried. An empty id keeps the
// default.
func WithID(id string) PublishOption { return func(m *Message) { m.ID = id } }

// WithMetadata sets one metadata entry on the message. Entries that Publish
// sets itself (MetadataContentType and the CloudEvents "ce-" attributes)
// override it.
func WithMetadata(key, value string) PublishOption {
	return func(m *Message) { m.Metadata[key] = value }
}

// Publish encodes v and publishes it with p, blocking as p.Publish does. The
// message carries the codec's content type in MetadataContentType and the
// CloudEvents attributes id (the message ID), source, type, time and
// specversion. Encoding errors are returned before any I/O.
func (t Topic[T]) Publish(ctx context.Context, p Publisher, v T, opts ...PublishOption) error {
	payload, err := t.cfg.codec.Encode(v)
	if err != nil {
		return fmt.Errorf("pubsub: encode %T for topic %s: %w", v, t.name, err)
	}
	m := NewMessage(payload)
	for _, o := range opts {
		o(m)
	}
	if m.ID == "" {
		// WithID(""): ce-id must be the ID Publish sends, and CloudEvents
		// requires one, so set it here rather than leave it to Publish.
		m.ID = NewID()
	}
	t.cfg.setCloudEvents(m, t.cfg.codec.ContentType(), time.Now())
	return p.Publish(ctx, t.name, m)
}

// Subscribe joins group on the topic with s and calls h with each decoded
// value and its message, as Subscriber.Subscribe does. A payload that does not
// decode is dead-lettered at once, with the decode error as the reason.
func (t Topic[T]) Subscribe(ctx context.Context, s Subscriber, group string, h func(ctx context.Context, v T, msg *Message) error, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	return s.Subscribe(ctx, t.name, group, func(ctx context.Context, msg *Message) error {
		var v T
		if err := t.cfg.codec.Decode(msg.Payload, &v); err != nil {
			return Permanent(fmt.Errorf("pubsub: decode %T from topic %s: %w", v, t.name, err))
		}
		return h(ctx, v, msg)
	}, opts...)
}
