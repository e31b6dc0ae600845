package watermillbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Subscriber is a watermill message.Subscriber that joins one Switchyard
// consumer group. It is safe for concurrent use.
type Subscriber struct {
	s     pubsub.Subscriber
	group string
	opts  []pubsub.SubscribeOption

	mu      sync.Mutex
	closing bool                 // Close was called; guarded by mu
	streams map[*stream]struct{} // running and stopping streams; guarded by mu
	pending sync.WaitGroup       // Subscribe calls in progress; Add under mu while !closing

	closeOnce sync.Once
	closed    chan struct{} // closed when Close's work is done
	closeErr  error
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a watermill Subscriber whose subscriptions join
// group (watermill's Subscribe has no group) with opts. Closing it closes
// those subscriptions, not s. s should also be a pubsub.GroupCreator (every
// broker of this module is) for SubscribeInitialize to work.
func NewSubscriber(s pubsub.Subscriber, group string, opts ...pubsub.SubscribeOption) *Subscriber {
	return &Subscriber{s: s, group: group, opts: opts, streams: map[*stream]struct{}{}, closed: make(chan struct{})}
}

// SubscribeInitialize implements message.SubscribeInitializer: it creates
// the Subscriber's group of topic if it does not exist yet, so that the
// messages published from then on are kept for it until a member takes
// them. It blocks until the broker has created the group. It returns
// pubsub.ErrClosed after Close, and an error wrapping errors.ErrUnsupported
// when the Switchyard Subscriber is not a pubsub.GroupCreator.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return pubsub.ErrClosed
	}
	gc, ok := s.s.(pubsub.GroupCreator)
	if !ok {
		return fmt.Errorf("watermillbridge: %T cannot create groups (it is no pubsub.GroupCreator): %w", s.s, errors.ErrUnsupported)
	}
	return gc.CreateGroup(context.Background(), topic, s.group)
}

// Subscribe implements message.Subscriber: it joins the Subscriber's group
// of topic, creating the group on first use, and returns the channel on
// which the group's messages are delivered, each waiting for its Ack or
// Nack. The channel is closed when ctx ends or the Subscriber is closed;
// messages then sent but not settled are handed back untouched (see the
// package doc). Values of ctx reach the delivered messages' contexts.
// Subscribe blocks while the broker sets up the group. After Close it
// returns pubsub.ErrClosed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, pubsub.ErrClosed
	}
	s.pending.Add(1)
	s.mu.Unlock()
	defer s.pending.Done()
	st := newStream()
	sub, err := s.s.Subscribe(ctx, topic, s.group, st.deliver, s.opts...)
	if err != nil {
		st.abandon()
		return nil, err
	}
	st.start(sub)
	s.mu.Lock()
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-st.done
		s.mu.Lock()
		delete(s.streams, st)
		s.mu.Unlock()
	}()
	return st.out, nil
}

// Close implements message.Subscriber: it closes every subscription it made
// (as pubsub.Subscription.Close does, but handing back at once the messages
// that watermill holds unsettled) and returns once their channels are
// closed, with the errors of those closes joined. Subscribe then returns
// pubsub.ErrClosed. Close is idempotent: later calls wait for the first to
// finish and return its result.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.pending.Wait() // a Subscribe in progress adds its stream
		s.mu.Lock()
		streams := make([]*stream, 0, len(s.streams))
		for st := range s.streams {
			streams = append(streams, st)
		}
		s.mu.Unlock()
		errs := make([]error, len(streams))
		var wg sync.WaitGroup
		for i, st := range streams {
			wg.Go(func() {
				errs[i] = st.sub.Close()
				<-st.outClosed
			})
		}
		wg.Wait()
		s.closeErr = errors.Join(errs...)
		close(s.closed)
	})
	<-s.closed
	return s.closeErr
}
