package memory

import (
	"context"
	"fmt"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// ListDeadLetters implements driver.DeadLetters.
func (b *broker) ListDeadLetters(_ context.Context, topic, group string, limit int) ([]*driver.Message, error) {
	g, err := b.hub.existing(topic, group)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.dead.Len()
	if limit > 0 {
		n = min(n, limit)
	}
	out := make([]*driver.Message, n)
	for i := range n {
		out[i] = clone(g.dead.At(i), 0)
	}
	return out, nil
}

// ReplayDeadLetters implements driver.DeadLetters: the dead letters go to
// the back of the group's queue, as if just published to it alone.
func (b *broker) ReplayDeadLetters(_ context.Context, topic, group string, ids []string) (int, error) {
	g, err := b.hub.existing(topic, group)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	taken := g.takeDeadLocked(driver.NewIDSet(ids))
	for _, m := range taken {
		g.enqueueLocked(&entry{msg: driver.Revive(m), attempt: 1})
	}
	g.mu.Unlock()
	if len(taken) > 0 {
		g.signal()
	}
	return len(taken), nil
}

// PurgeDeadLetters implements driver.DeadLetters.
func (b *broker) PurgeDeadLetters(_ context.Context, topic, group string, ids []string) (int, error) {
	g, err := b.hub.existing(topic, group)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.takeDeadLocked(driver.NewIDSet(ids))), nil
}

// takeDeadLocked removes and returns the dead letters whose IDs match, in
// their order.
func (g *group) takeDeadLocked(ids driver.IDSet) []*driver.Message {
	var taken []*driver.Message
	var kept deque[*driver.Message]
	for g.dead.Len() > 0 {
		m, _ := g.dead.PopFront()
		if ids.Match(m.ID) {
			taken = append(taken, m)
		} else {
			kept.PushBack(m)
		}
	}
	g.dead = kept
	return taken
}

// storeDeadLocked keeps dl in the group's dead letters, or fails when they
// are full.
func (g *group) storeDeadLocked(dl *driver.Message) error {
	if g.noDead != nil {
		return g.noDead
	}
	if g.dead.Len() >= g.topic.hub.cfg.DeadLetterCapacity {
		return fmt.Errorf("memory: dead letters of group %s of %s are full (%d, dead_letter_capacity); replay or purge some: %w",
			g.name, g.topic.name, g.topic.hub.cfg.DeadLetterCapacity, errDeadLettersFull)
	}
	g.dead.PushBack(clone(dl, 0))
	return nil
}

var errDeadLettersFull = fmt.Errorf("dead letters full")
