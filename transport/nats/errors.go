package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// attemptTimeout bounds one try of a request that is retried, so that a
// request lost with a connection is sent again after the reconnection
// rather than waited for until the overall deadline.
const attemptTimeout = 5 * time.Second

// transientJS reports whether err is a JetStream error that may go away by
// itself: an answer of 503 (JetStream unavailable, a stream without a
// leader yet, a full stream), no answer from the stream, a publish
// acknowledgement that timed out or was lost with the connection, a full
// publish window.
func transientJS(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.Code == 503 || apiErr.Code == 408) {
		return true
	}
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs)
}

// retry runs f until it succeeds, fails with an error that is not
// transient, or the request timeout (or ctx) ends, pausing between tries.
// Each try gets a context of its own, bounded by attemptTimeout. When ctx
// ends it returns ctx's error, unwrapped; when the request timeout ends, the
// last error, wrapping context.DeadlineExceeded too.
func (b *broker) retry(ctx context.Context, what string, f func(ctx context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	pause := 20 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(rctx, attemptTimeout)
		err := f(actx)
		acancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) {
			return fmt.Errorf("nats: %s: %w", what, err)
		}
		if err := b.link.wait(rctx); err == nil {
			select {
			case <-time.After(pause):
				pause = min(2*pause, time.Second)
				continue
			case <-rctx.Done():
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b.link.isClosed() {
			return fmt.Errorf("nats: %s: %w", what, errClosed)
		}
		return fmt.Errorf("nats: %s: not done within request_timeout %v: %w (%w)", what, b.cfg.RequestTimeout, err, context.DeadlineExceeded)
	}
}
