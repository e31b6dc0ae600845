// Package ledger counts, for the tests that break a broker under load, what
// the publishers had confirmed and what a group received, and tells from
// the two what was lost (confirmed, never received), delivered twice, and
// delivered though its Publish failed. A Ledger is safe for concurrent use
// by publishers and handlers.
package ledger

import (
	"sync"
	"time"
)

// Ledger is the record of one run. The zero value is not ready: use New.
type Ledger struct {
	mu        sync.Mutex
	confirmed map[string]struct{}
	received  map[string]int
	failed    int
	lastErr   error
	changed   chan struct{} // closed and replaced at each Received
}

// New returns an empty Ledger.
func New() *Ledger {
	return &Ledger{confirmed: map[string]struct{}{}, received: map[string]int{}, changed: make(chan struct{})}
}

// Confirmed records ids as published: their Publish returned nil.
func (l *Ledger) Confirmed(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.confirmed[id] = struct{}{}
	}
}

// Failed records n messages whose Publish returned err.
func (l *Ledger) Failed(n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed += n
	l.lastErr = err
}

// Received records one delivery of id to the group.
func (l *Ledger) Received(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.received[id]++
	close(l.changed)
	l.changed = make(chan struct{})
}

// NConfirmed returns how many distinct messages were confirmed so far.
func (l *Ledger) NConfirmed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.confirmed)
}

// WaitAllReceived blocks until every confirmed message was received at
// least once, or timeout passed, and reports whether they were. It wakes
// at each delivery, not on a clock.
func (l *Ledger) WaitAllReceived(timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		missing := l.missingLocked()
		changed := l.changed
		l.mu.Unlock()
		if missing == 0 {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

func (l *Ledger) missingLocked() int {
	n := 0
	for id := range l.confirmed {
		if l.received[id] == 0 {
			n++
		}
	}
	return n
}

// Counts is a Ledger's figures at one moment.
type Counts struct {
	Confirmed int   // distinct messages whose Publish returned nil
	Failed    int   // messages whose Publish returned an error
	LastErr   error // the last of those errors
	Distinct  int   // distinct messages received
	// Lost are the confirmed messages never received.
	Lost []string
	// Duplicates counts deliveries beyond the first of each message.
	Duplicates int
	// Unconfirmed counts messages received though their Publish failed:
	// the broker stored them but its answer was lost, which
	// at-least-once allows.
	Unconfirmed int
}

// Counts returns the figures now.
func (l *Ledger) Counts() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Counts{Confirmed: len(l.confirmed), Failed: l.failed, LastErr: l.lastErr, Distinct: len(l.received)}
	for id := range l.confirmed {
		if l.received[id] == 0 {
			c.Lost = append(c.Lost, id)
		}
	}
	for id, n := range l.received {
		c.Duplicates += n - 1
		if _, ok := l.confirmed[id]; !ok {
			c.Unconfirmed++
		}
	}
	return c
}
