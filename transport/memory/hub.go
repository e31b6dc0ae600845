package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// hub is the shared state behind Broker handles: the topics and their
// groups. It lives as long as the process.
type hub struct {
	cfg    Config
	mu     sync.Mutex
	topics map[string]*topic
}

// topic fans messages out to its groups. mu serializes publishes, so every
// group sees one topic's messages in the same order, and a batch enters every
// group or none.
type topic struct {
	hub    *hub
	name   string
	mu     sync.Mutex
	groups map[string]*group
	list   []*group      // groups, for the publish loop
	room   chan struct{} // closed when a full group frees room; nil when no publisher waits
	// waiting is set while room is not nil, so that acks need not lock mu.
	waiting atomic.Bool
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*hub{}
)

// sharedHub returns the process-wide hub called name, making it with cfg on
// first use.
func sharedHub(name string, cfg Config) (*hub, error) {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	if h := hubs[name]; h != nil {
		if h.cfg != cfg {
			return nil, fmt.Errorf("memory: hub %q already exists with other settings (%+v); open it with the same settings", name, h.cfg)
		}
		return h, nil
	}
	h := newHub(cfg)
	hubs[name] = h
	return h, nil
}

func newHub(cfg Config) *hub { return &hub{cfg: cfg, topics: map[string]*topic{}} }

func (h *hub) topic(name string) *topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		t = &topic{hub: h, name: name, groups: map[string]*group{}}
		h.topics[name] = t
	}
	return t
}

// group returns the group of topic, creating both on first use.
func (h *hub) group(topicName, name string) *group {
	t := h.topic(topicName)
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[name]
	if g == nil {
		g = newGroup(t, name)
		t.groups[name] = g
		t.list = append(t.list, g)
	}
	return g
}

// existing returns the group of topic, or an error wrapping
// driver.ErrNotFound if it was never created.
func (h *hub) existing(topicName, name string) (*group, error) {
	h.mu.Lock()
	t := h.topics[topicName]
	h.mu.Unlock()
	if t != nil {
		t.mu.Lock()
		g := t.groups[name]
		t.mu.Unlock()
		if g != nil {
			return g, nil
		}
	}
	return nil, fmt.Errorf("memory: group %s of topic %s: %w", name, topicName, driver.ErrNotFound)
}

// deleteGroup removes the group of topic with its messages and dead
// letters; its receivers get nothing more.
func (h *hub) deleteGroup(topicName, name string) error {
	g, err := h.existing(topicName, name)
	if err != nil {
		return err
	}
	t := g.topic
	t.mu.Lock()
	delete(t.groups, name)
	for i, x := range t.list {
		if x == g {
			t.list = append(t.list[:i:i], t.list[i+1:]...)
			break
		}
	}
	t.mu.Unlock()
	g.mu.Lock()
	g.deleted = true
	g.ready, g.dead = deque[slot]{}, deque[*driver.Message]{}
	clear(g.keys)
	clear(g.busy)
	clear(g.inFlight)
	g.held = 0
	g.mu.Unlock()
	t.freed()
	return nil
}

// publish enqueues msgs, already validated and copied, to every group of
// topic at once, blocking while any group lacks room for all of them.
func (h *hub) publish(ctx context.Context, topicName string, msgs []driver.Message) error {
	t := h.topic(topicName)
	for {
		t.mu.Lock()
		room := t.roomForLocked(len(msgs), h.cfg.GroupCapacity)
		if !room {
			// Announce the wait, then look again: an ack that freed room
			// before it saw the announcement is seen here.
			if t.room == nil {
				t.room = make(chan struct{})
				t.waiting.Store(true)
			}
			room = t.roomForLocked(len(msgs), h.cfg.GroupCapacity)
		}
		if room {
			for _, g := range t.list {
				g.mu.Lock()
				for i := range msgs {
					g.enqueueLocked(&entry{msg: &msgs[i], attempt: 1})
				}
				g.mu.Unlock()
				g.signal()
			}
			t.mu.Unlock()
			return nil
		}
		wait := t.room
		t.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// roomForLocked reports whether every group can take n more messages.
func (t *topic) roomForLocked(n, capacity int) bool {
	for _, g := range t.list {
		g.mu.Lock()
		held := g.held
		g.mu.Unlock()
		if held+n > capacity {
			return false
		}
	}
	return true
}

// freed tells waiting publishers that a group let go of a message.
func (t *topic) freed() {
	if !t.waiting.Load() {
		return
	}
	t.mu.Lock()
	t.waiting.Store(false)
	if t.room != nil {
		close(t.room)
		t.room = nil
	}
	t.mu.Unlock()
}
