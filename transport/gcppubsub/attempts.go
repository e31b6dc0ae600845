package gcppubsub

import "sync"

// maxAdjustments bounds the adjustments a broker remembers; past it they
// are forgotten (the next deliveries of those messages show the broker's
// count unadjusted).
const maxAdjustments = 100_000

// adjustments remembers, per subscription and Pub/Sub message, how far the
// Attempt of the message's next delivery must differ from what the broker's
// count will say: a message handed back by nack, untouched (which Pub/Sub
// counts as a delivery) or with an Attempt Pub/Sub cannot know. It is local
// to the broker (the process): another process sees the count unadjusted.
type adjustments struct {
	mu sync.Mutex
	m  map[adjustKey]int
}

type adjustKey struct{ sub, msg string }

func newAdjustments() *adjustments { return &adjustments{m: map[adjustKey]int{}} }

// get returns the adjustment of message msg on subscription sub.
func (a *adjustments) get(sub, msg string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[adjustKey{sub, msg}]
}

// set records the adjustment of message msg on subscription sub; 0 forgets
// it.
func (a *adjustments) set(sub, msg string, delta int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := adjustKey{sub, msg}
	if delta == 0 {
		delete(a.m, k)
		return
	}
	if len(a.m) >= maxAdjustments {
		clear(a.m)
	}
	a.m[k] = delta
}

// counter works out the Attempt of each delivery of one member: the
// Attempt a hand-back set (1 otherwise) plus the deliveries since, as
// Pub/Sub counts them (subscriptions with a dead-letter policy), or, when
// its count is missing or cannot be trusted, as this member saw them.
type counter struct {
	trust func() bool // nil: Pub/Sub's count is used whenever it has one

	mu   sync.Mutex
	seen map[string]int // deliveries seen here, by Pub/Sub message ID
}

func (b *broker) newCounter(r groupRefs) *counter {
	c := &counter{seen: map[string]int{}}
	if b.emulator {
		c.trust = b.soleSubscription(r.topicPath)
	}
	return c
}

// count sets d.natural and d.step.
func (c *counter) count(rc *receiver, d *delivery) {
	pc := 0
	if d.m.DeliveryAttempt != nil {
		pc = *d.m.DeliveryAttempt
	}
	trusted := pc > 0 && rc.state().counts && (c.trust == nil || c.trust())
	c.mu.Lock()
	if len(c.seen) >= maxAdjustments {
		clear(c.seen)
	}
	c.seen[d.m.ID]++
	n := c.seen[d.m.ID]
	c.mu.Unlock()
	if trusted {
		n = pc
	}
	d.natural = d.in.base + n - 1
	d.step = 1
}
