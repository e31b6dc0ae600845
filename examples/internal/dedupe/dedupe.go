// Package dedupe remembers the IDs of recently handled messages, so that a
// handler can ignore the redeliveries that at-least-once delivery makes.
package dedupe

import "sync"

// DefaultCapacity is the number of IDs a Set made with capacity <= 0 keeps.
const DefaultCapacity = 100_000

// Set is a bounded set of IDs: once full, adding an ID forgets the oldest.
// It is safe for concurrent use.
type Set struct {
	mu    sync.Mutex
	cap   int
	ids   map[string]struct{}
	order []string // ring of the IDs in insertion order
	next  int
}

// New returns an empty Set that keeps the last capacity IDs
// (DefaultCapacity when capacity <= 0).
func New(capacity int) *Set {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Set{cap: capacity, ids: make(map[string]struct{})}
}

// Add adds id and reports whether it was new.
func (s *Set) Add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if len(s.order) < s.cap {
		s.order = append(s.order, id)
	} else {
		delete(s.ids, s.order[s.next])
		s.order[s.next] = id
		s.next = (s.next + 1) % s.cap
	}
	s.ids[id] = struct{}{}
	return true
}

// Remove forgets id, so that a later Add of it reports true (for a handler
// that failed after Add and wants its redelivery handled).
func (s *Set) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, id) // its slot in order is reused later; deleting a missing key is a no-op
}
