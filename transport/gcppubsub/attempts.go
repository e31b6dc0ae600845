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

// count sets d.natural and d.step: the Attempt a hand-back carried (1
// otherwise) plus the deliveries since, where Pub/Sub counts them (a
// dead-letter policy, not on an emulator); elsewhere only the hand-backs'
// Attempt and the retries made in the member count.
func (rc *receiver) count(d *delivery) {
	d.natural, d.step = d.in.base, 0
	if c := d.m.DeliveryAttempt; c != nil && *c > 0 && rc.state().counts {
		d.natural, d.step = d.in.base+*c-1, 1
	}
}
