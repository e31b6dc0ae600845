package analytics

import (
	"maps"
	"sync"

	"github.com/switchyard-go/switchyard/examples/internal/dedupe"
)

// Counter counts events per type and per user, each message ID once. It is
// safe for concurrent use.
type Counter struct {
	seen   *dedupe.Set
	mu     sync.Mutex
	total  int64
	byType map[string]int64
	byUser map[string]map[string]int64
}

// NewCounter returns an empty Counter.
func NewCounter() *Counter {
	return &Counter{seen: dedupe.New(0), byType: map[string]int64{}, byUser: map[string]map[string]int64{}}
}

// Count counts an event of typ by user, carried by message id, unless id was
// counted before; it reports whether it counted.
func (c *Counter) Count(id, user, typ string) bool {
	if !c.seen.Add(id) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	c.byType[typ]++
	u := c.byUser[user]
	if u == nil {
		u = map[string]int64{}
		c.byUser[user] = u
	}
	u[typ]++
	return true
}

// Stats is a snapshot of a Counter.
type Stats struct {
	Events int64                       `json:"events"`
	ByType map[string]int64            `json:"by_type"`
	ByUser map[string]map[string]int64 `json:"by_user"`
}

// Snapshot returns the counts; with user not empty, ByUser holds only that
// user.
func (c *Counter) Snapshot(user string) Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Events: c.total, ByType: maps.Clone(c.byType), ByUser: map[string]map[string]int64{}}
	for u, counts := range c.byUser {
		if user == "" || u == user {
			s.ByUser[u] = maps.Clone(counts)
		}
	}
	return s
}
