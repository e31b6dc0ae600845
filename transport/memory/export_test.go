package memory

import "errors"

// BreakDeadLetters makes storing dead letters of group of topic on the
// shared hub name fail until restore is called: the conformance suite's
// Harness.BreakDeadLetters.
func BreakDeadLetters(name, topic, group string) (restore func()) {
	hubsMu.Lock()
	h := hubs[name]
	hubsMu.Unlock()
	g := h.group(topic, group)
	g.mu.Lock()
	g.noDead = errors.New("memory: dead-letter storage broken by the test")
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.noDead = nil
		g.mu.Unlock()
	}
}
