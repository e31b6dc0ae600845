package outbox_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/switchyard-go/switchyard/pubsub"
)

// The publishers here wrap a real broker to inject what a broker or a
// network does now and then; the messages they pass go to the broker.

// switchable refuses every Publish while down, as a broker that is
// unreachable makes Publish fail.
type switchable struct {
	pubsub.Publisher
	down    atomic.Bool
	refused atomic.Int64
}

var errDown = errors.New("test: broker unreachable")

func (s *switchable) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	if s.down.Load() {
		s.refused.Add(1)
		return errDown
	}
	return s.Publisher.Publish(ctx, topic, msgs...)
}

// partial makes the first Publish of a batch of at least two messages
// accept every message but the second, and say so with a PublishError,
// as a broker that nacks one message of a batch does.
type partial struct {
	pubsub.Publisher
	once sync.Once
}

func (p *partial) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	hit := false
	if len(msgs) >= 2 {
		p.once.Do(func() { hit = true })
	}
	if !hit {
		return p.Publisher.Publish(ctx, topic, msgs...)
	}
	rest := append([]*pubsub.Message{msgs[0]}, msgs[2:]...)
	if err := p.Publisher.Publish(ctx, topic, rest...); err != nil {
		return err
	}
	return &pubsub.PublishError{Topic: topic, Failed: []int{1}, IDs: []string{msgs[1].ID}, Err: errors.New("test: nacked")}
}

// hanging blocks its first Publish, ignoring ctx, until release is
// closed, then fails it; entered is closed once that Publish started. It
// is a relay that hangs (a stalled process) while it holds rows.
type hanging struct {
	pubsub.Publisher
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newHanging(p pubsub.Publisher) *hanging {
	return &hanging{Publisher: p, entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *hanging) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	first := false
	h.once.Do(func() { first = true })
	if !first {
		return h.Publisher.Publish(ctx, topic, msgs...)
	}
	close(h.entered)
	<-h.release
	return errors.New("test: hung publish gave up")
}
