// Package watermillbridge makes any Switchyard broker a watermill
// message.Publisher and message.Subscriber, so that existing watermill
// Routers, handlers and middleware run on Switchyard's transports with
// Switchyard's semantics (consumer groups, retries with backoff, dead
// letters, drain).
//
// Mapping: watermill's UUID is Message.ID, its Metadata is Metadata, its
// Payload is Payload. The metadata entry MetadataKey, when present on a
// published watermill message, becomes the Switchyard Key (and is removed
// from Metadata); on delivery the Key and the Attempt are set in metadata
// under MetadataKey and MetadataAttempt.
//
// Ack and Nack: a delivered watermill message that is Acked is acked on the
// broker; one that is Nacked is retried with the subscription's backoff, and
// dead-lettered after its maximum attempts, as a handler error would be.
package watermillbridge

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"

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

var errNacked = fmt.Errorf("watermillbridge: message nacked")

// Publisher is a watermill message.Publisher that publishes through a
// Switchyard Publisher. It is safe for concurrent use.
type Publisher struct {
	p pubsub.Publisher
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a watermill Publisher over p. Closing it does not close
// p.
func NewPublisher(p pubsub.Publisher) *Publisher { return &Publisher{p: p} }

// Publish implements message.Publisher: it publishes the messages as one
// batch, blocking until the broker accepted them all, with the first
// message's context (watermill's Publish takes none).
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
		delete(md, MetadataAttempt) // set on delivery; a republished message starts afresh
		msgs[i] = &pubsub.Message{ID: wm.UUID, Key: key, Metadata: md, Payload: wm.Payload}
	}
	return p.p.Publish(messages[0].Context(), topic, msgs...)
}

// Close implements message.Publisher; it does not close the Switchyard
// Publisher.
func (p *Publisher) Close() error { return nil }

// Subscriber is a watermill message.Subscriber that joins one Switchyard
// consumer group. It is safe for concurrent use.
type Subscriber struct {
	s     pubsub.Subscriber
	group string
	opts  []pubsub.SubscribeOption

	mu     sync.Mutex
	closed bool
	subs   []*pubsub.Subscription
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a watermill Subscriber whose subscriptions join group
// (watermill's Subscribe has no group) with opts. Closing it closes those
// subscriptions, not s.
func NewSubscriber(s pubsub.Subscriber, group string, opts ...pubsub.SubscribeOption) *Subscriber {
	return &Subscriber{s: s, group: group, opts: opts}
}

// Subscribe implements message.Subscriber. Each delivery is sent on the
// returned channel and waits for its Ack or Nack. The channel is closed when
// ctx ends or the Subscriber is closed; a message that was not yet taken from
// the channel by then is handed back to the broker unsettled (not counted as
// a failure) and delivered again later.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, pubsub.ErrClosed
	}
	st := &stream{out: make(chan *message.Message), ready: make(chan struct{})}
	sub, err := s.s.Subscribe(ctx, topic, s.group, st.deliver, s.opts...)
	if err != nil {
		return nil, err
	}
	st.stopping = sub.Stopping()
	close(st.ready)
	s.subs = append(s.subs, sub)
	go func() {
		<-sub.Done() // every handler has returned: nothing sends on out any more
		close(st.out)
	}()
	return st.out, nil
}

// stream is one Subscribe's channel.
type stream struct {
	out      chan *message.Message
	ready    chan struct{}   // closed once stopping is set
	stopping <-chan struct{} // the subscription's Stopping
}

// deliver is the Switchyard handler: it hands the message to the watermill
// consumer and waits for its verdict.
func (st *stream) deliver(ctx context.Context, m *pubsub.Message) error {
	<-st.ready
	wm := message.NewMessage(m.ID, m.Payload)
	maps.Copy(wm.Metadata, m.Metadata)
	if m.Key != "" {
		wm.Metadata.Set(MetadataKey, m.Key)
	}
	wm.Metadata.Set(MetadataAttempt, strconv.Itoa(m.Attempt))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wm.SetContext(wctx)
	select {
	case st.out <- wm:
	case <-ctx.Done():
		return ctx.Err()
	case <-st.stopping:
		return fmt.Errorf("watermillbridge: subscriber closing: %w", pubsub.ErrClosed)
	}
	select {
	case <-wm.Acked():
		return nil
	case <-wm.Nacked():
		return errNacked
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements message.Subscriber: it closes every subscription it made
// (draining them) and their channels. It is idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := s.subs
	s.mu.Unlock()
	var first error
	for _, sub := range subs {
		if err := sub.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
