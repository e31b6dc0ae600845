// Package lifecycle holds the bookkeeping every transport's broker handle
// needs: the subscriptions it started, stopped all at once by Close, and the
// closed flag that turns later calls into pubsub.ErrClosed.
package lifecycle

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Subscriptions tracks the running subscriptions of one broker handle. The
// zero value is ready to use; it is safe for concurrent use.
type Subscriptions struct {
	closed atomic.Bool
	mu     sync.Mutex
	next   int
	subs   map[int]*pubsub.Subscription
}

// Closed reports whether Close has been called. It does not block.
func (s *Subscriptions) Closed() bool { return s.closed.Load() }

// Start runs start, passing it the onStop callback to give
// pubsub.StartSubscription, and tracks the subscription it returns until it
// stops. After Close it returns pubsub.ErrClosed without calling start.
// Concurrent Starts and Close wait for each other.
func (s *Subscriptions) Start(start func(onStop func()) (*pubsub.Subscription, error)) (*pubsub.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, pubsub.ErrClosed
	}
	id := s.next
	s.next++
	sub, err := start(func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	select {
	case <-sub.Done(): // already stopped (its context ended): nothing to track
	default:
		if s.subs == nil {
			s.subs = map[int]*pubsub.Subscription{}
		}
		s.subs[id] = sub
	}
	return sub, nil
}

// Close marks the handle closed, then closes every tracked subscription at
// once and waits for them, joining their errors. Later calls return nil.
func (s *Subscriptions) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	subs := make([]*pubsub.Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() { errs[i] = sub.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
