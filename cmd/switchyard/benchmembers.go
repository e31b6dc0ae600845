package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-go/switchyard/pubsub"
)

// members are the subscriptions of a bench run's groups. With churn, one
// member at a time leaves (Close, which lets its running handlers finish
// and hands back what it had not started) and a new one joins the same
// group, the way instances of a service come and go in a rolling deploy.
type members struct {
	b           broker
	ctx         context.Context // for Subscribe: not cancelled by Ctrl-C; members live until closed
	topic       string
	concurrency int

	mu   sync.Mutex
	subs []member
	next int // the member that leaves at the next churn

	churns atomic.Int64 // members replaced
}

// member is one subscription and the group it serves.
type member struct {
	g *benchGroup
	s *pubsub.Subscription
}

// join subscribes a new member to g.
func (m *members) join(g *benchGroup) error {
	s, err := m.subscribe(g)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.subs = append(m.subs, member{g: g, s: s})
	m.mu.Unlock()
	return nil
}

func (m *members) subscribe(g *benchGroup) (*pubsub.Subscription, error) {
	s, err := m.b.Subscribe(m.ctx, m.topic, g.name, g.handle, pubsub.WithConcurrency(m.concurrency))
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s as %s: %w", m.topic, g.name, err)
	}
	return s, nil
}

// churn replaces the next member in turn: it closes, then a new member of
// the same group subscribes in its place.
func (m *members) churn() error {
	m.mu.Lock()
	if len(m.subs) == 0 {
		m.mu.Unlock()
		return nil
	}
	i := m.next % len(m.subs)
	m.next++
	old := m.subs[i]
	m.mu.Unlock()
	if err := old.s.Close(); err != nil {
		return fmt.Errorf("churn: close a member of %s: %w", old.g.name, err)
	}
	s, err := m.subscribe(old.g)
	if err != nil {
		m.mu.Lock()
		m.subs = append(m.subs[:i], m.subs[i+1:]...)
		m.mu.Unlock()
		return fmt.Errorf("churn: %w", err)
	}
	m.mu.Lock()
	m.subs[i] = member{g: old.g, s: s}
	m.mu.Unlock()
	m.churns.Add(1)
	return nil
}

// churnEvery replaces a member every period until stop is closed, and
// returns the first error, after which it stops churning. A period of 0
// means no churn.
func (m *members) churnEvery(period time.Duration, stop <-chan struct{}) error {
	if period <= 0 {
		return nil
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-t.C:
			if err := m.churn(); err != nil {
				return err
			}
		}
	}
}

// closeAll closes every member.
func (m *members) closeAll() error {
	m.mu.Lock()
	subs := m.subs
	m.subs = nil
	m.mu.Unlock()
	var err error
	for _, sub := range subs {
		if cerr := sub.s.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close bench subscription: %w", cerr))
		}
	}
	return err
}
