package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Shutdown implements Broker. Phases:
//
//  1. Subscribe starts returning ErrClosed.
//  2. Every Subscription shuts down at once, as Subscription.Shutdown(ctx)
//     does: no new deliveries, running handlers finish and their messages
//     are settled; meanwhile Publish and the admin calls still work.
//  3. New calls return ErrClosed; Shutdown waits for the calls still in
//     progress, such as a Publish waiting for its confirms.
//  4. The transport flushes and closes its connections.
//
// If ctx ends during 2 or 3, Shutdown goes on with the next phase at once
// (handlers still running have their messages handed back; calls still in
// progress fail when the connections close) and returns ctx's error at the
// end. Later calls wait for the first to finish and return its result.
func (c *Client) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() {
		defer close(c.shutdownDone)
		c.draining.Store(true)
		c.mu.Lock()
		subs := make([]*Subscription, 0, len(c.subs))
		for s := range c.subs {
			subs = append(subs, s)
		}
		c.mu.Unlock()
		errs := make([]error, len(subs)+2)
		var wg sync.WaitGroup
		for i, s := range subs {
			wg.Go(func() { errs[i] = s.Shutdown(ctx) })
		}
		wg.Wait()
		if err := c.ops.shutAndWait(ctx); err != nil {
			errs[len(subs)] = fmt.Errorf("pubsub: calls still in progress at shutdown: %w", err)
		}
		if err := c.d.Close(); err != nil {
			errs[len(subs)+1] = fmt.Errorf("pubsub: close transport: %w", err)
		}
		c.shutdownErr = errors.Join(errs...)
		if ctx.Err() != nil && c.shutdownErr != nil {
			c.shutdownErr = ctx.Err()
		}
	})
	<-c.shutdownDone
	return c.shutdownErr
}

// Close implements Publisher and Subscriber: Shutdown bounded by the drain
// timeout (WithDrainTimeout given to the broker; default 30s). It is
// idempotent.
func (c *Client) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.sub.drainTimeout)
	defer cancel()
	return c.Shutdown(ctx)
}
