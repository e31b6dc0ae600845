package pubsub

import (
	"context"
	"sync"
)

// gate counts the calls in progress through a Client and, once shut, turns
// new ones away and lets Shutdown wait for the rest.
type gate struct {
	mu   sync.Mutex
	shut bool
	n    int
	idle chan struct{} // closed when n drops to 0 after shut; nil until then
}

// enter admits a call, or reports false once the gate is shut.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		return false
	}
	g.n++
	return true
}

// leave ends a call admitted by enter.
func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// shutAndWait turns new calls away and waits until the calls in progress
// have left or ctx ends (ctx's error).
func (g *gate) shutAndWait(ctx context.Context) error {
	g.mu.Lock()
	g.shut = true
	if g.n == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
