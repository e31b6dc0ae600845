package pubsub

import (
	"context"
	"sync"
	"sync/atomic"
)

// gate counts the calls in progress through a Client and, once shut, turns
// new ones away and lets Shutdown wait for the rest. It is lock-free on the
// way in and out, as every Publish goes through it.
type gate struct {
	state    atomic.Int64 // calls in progress, plus shutBit once shut
	idle     chan struct{}
	idleOnce sync.Once
}

// shutBit marks a shut gate in state.
const shutBit = int64(1) << 62

// enter admits a call, or reports false once the gate is shut.
func (g *gate) enter() bool {
	if g.state.Add(1)&shutBit != 0 {
		g.leave()
		return false
	}
	return true
}

// leave ends a call admitted by enter (or refused by it).
func (g *gate) leave() {
	if g.state.Add(-1) == shutBit {
		g.idleOnce.Do(func() { close(g.idle) })
	}
}

// shutAndWait turns new calls away and waits until the calls in progress
// have left or ctx ends (ctx's error). It is called once.
func (g *gate) shutAndWait(ctx context.Context) error {
	g.shut()
	return g.wait(ctx)
}

// shut turns new calls away. It is called once.
func (g *gate) shut() {
	g.idle = make(chan struct{})
	if g.state.Add(shutBit) == shutBit {
		g.idleOnce.Do(func() { close(g.idle) })
	}
}

// wait waits, after shut, until the calls in progress have left or ctx
// ends (ctx's error).
func (g *gate) wait(ctx context.Context) error {
	select {
	case <-g.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
