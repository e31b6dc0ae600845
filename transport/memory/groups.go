package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

var _ driver.GroupLister = (*broker)(nil)

// ListGroups implements driver.GroupLister: memory tells both counts
// exactly. A topic is known from its first Publish, CreateGroup or
// Subscribe in this process.
func (b *broker) ListGroups(_ context.Context, topicName string) ([]driver.GroupInfo, error) {
	b.hub.mu.Lock()
	t := b.hub.topics[topicName]
	b.hub.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("memory: topic %s: %w", topicName, driver.ErrNotFound)
	}
	t.mu.Lock()
	groups := slices.Clone(t.list)
	t.mu.Unlock()
	out := make([]driver.GroupInfo, 0, len(groups))
	for _, g := range groups {
		g.mu.Lock()
		if !g.deleted {
			out = append(out, driver.GroupInfo{Name: g.name, Backlog: g.held, DeadLetters: g.dead.Len()})
		}
		g.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b driver.GroupInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
