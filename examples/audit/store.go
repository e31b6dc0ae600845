package audit

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/examples/events"
)

// Record is one audited event.
type Record struct {
	// MessageID is the ID of the message that carried the event; the store
	// keeps one record per MessageID.
	MessageID  string              `json:"message_id"`
	Event      events.UserActivity `json:"event"`
	ReceivedAt time.Time           `json:"received_at"`
}

// Store is where the audit trail is kept. Implementations are safe for
// concurrent use.
type Store interface {
	// Append adds r unless a record with its MessageID exists, and reports
	// whether it added it.
	Append(ctx context.Context, r Record) (bool, error)
	// List returns the records of userID (every user when empty), oldest
	// first, at most limit of them (the latest).
	List(ctx context.Context, userID string, limit int) ([]Record, error)
}

// MemoryStore is a Store in process memory, lost on restart. The zero value
// is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	records []Record
	ids     map[string]bool
}

// Append implements Store.
func (s *MemoryStore) Append(_ context.Context, r Record) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[r.MessageID] {
		return false, nil
	}
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[r.MessageID] = true
	s.records = append(s.records, r)
	return true, nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, userID string, limit int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.records {
		if userID == "" || r.Event.UserID == userID {
			out = append(out, r)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return append([]Record{}, out...), nil
}
