package watermillbridge

import (
	"fmt"
	"maps"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Metadata keys the bridge reads and writes on watermill messages.
const (
	// MetadataKey carries pubsub.Message.Key.
	MetadataKey = "switchyard-key"
	// MetadataAttempt carries pubsub.Message.Attempt on delivery (decimal).
	MetadataAttempt = "switchyard-attempt"
)

// Publisher is a watermill message.Publisher that publishes through a
// Switchyard Publisher. It is safe for concurrent use.
type Publisher struct {
	p pubsub.Publisher
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a watermill Publisher over p. Closing it does not
// close p.
func NewPublisher(p pubsub.Publisher) *Publisher { return &Publisher{p: p} }

// Publish implements message.Publisher: it publishes the messages as one
// batch with the first message's context (watermill's Publish takes none),
// and blocks until the broker durably accepted them all, or returns the
// error of pubsub.Publisher.Publish. A message's MetadataKey entry becomes
// its Key; MetadataAttempt is dropped, so that a republished message
// starts afresh. The watermill messages are not modified.
func (p *Publisher) Publish(topic string, messages ...*message.Message) error {
	if len(messages) == 0 {
		return nil
	}
	msgs := make([]*pubsub.Message, len(messages))
	for i, wm := range messages {
		if wm == nil {
			return fmt.Errorf("watermillbridge: message %d of %d is nil: %w", i+1, len(messages), pubsub.ErrInvalidMessage)
		}
		md := maps.Clone(map[string]string(wm.Metadata))
		key := md[MetadataKey]
		delete(md, MetadataKey)
		delete(md, MetadataAttempt)
		msgs[i] = &pubsub.Message{ID: wm.UUID, Key: key, Metadata: md, Payload: wm.Payload}
	}
	return p.p.Publish(messages[0].Context(), topic, msgs...)
}

// Close implements message.Publisher. It returns nil and does not close
// the Switchyard Publisher, which the caller owns; Publish keeps working as
// long as that does.
func (p *Publisher) Close() error { return nil }
