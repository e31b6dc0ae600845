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
	gone   map[int]bool // stopped before Start could track them
}

// Closed reports whether Close has been called. It does not block.
func (s *Subscriptions) Closed() bool { return s.closed.Load() }

// Start runs start, passing it the onStop callback to give
// pubsub.StartSubscription, and tracks the subscription it returns until it
// stops. After Close it returns pubsub.ErrClosed without calling start; if
// Close comes while start runs, the new subscription is closed and Start
// returns pubsub.ErrClosed. start runs without any lock held, so a slow
// Subscribe delays neither Close nor other subscriptions.
func (s *Subscriptions) Start(start func(onStop func()) (*pubsub.Subscription, error)) (*pubsub.Subscription, error) {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil, pubsub.ErrClosed
	}
	id := s.next
	s.next++
	s.mu.Unlock()

	sub, err := start(func() { s.stopped(id) })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		_ = sub.Close()
		return nil, pubsub.ErrClosed
	}
	if s.gone[id] {
		delete(s.gone, id) // already stopped (its context ended)
	} else {
		if s.subs == nil {
			s.subs = map[int]*pubsub.Subscription{}
		}
		s.subs[id] = sub
	}
	s.mu.Unlock()
	return sub, nil
}

// stopped forgets subscription id, or notes that it stopped before Start
// tracked it.
func (s *Subscriptions) stopped(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[id]; ok {
		delete(s.subs, id)
		return
	}
	if s.gone == nil {
		s.gone = map[int]bool{}
	}
	s.gone[id] = true
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
