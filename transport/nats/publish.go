package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// SendBatch implements driver.Broker. It creates the topic's stream on
// first use, publishes every message asynchronously (pipelined within the
// broker's publish window) and waits for each acknowledgement, so it
// returns nil only once the stream stored every message. Messages whose
// acknowledgement did not come (a lost connection, a timeout, a stream
// without a leader or full) are published again, with the same
// Nats-Msg-Id so that the stream keeps one copy, until RequestTimeout; a
// refusal that is not transient fails its messages with a
// *driver.BatchError.
func (b *broker) SendBatch(ctx context.Context, topic string, msgs []*driver.Message) error {
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	subject := b.names.topicSubject(topic)
	out := make([]*natsgo.Msg, len(msgs))
	for i, m := range msgs {
		out[i] = encodeMessage(subject, m)
	}
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	var (
		failed   []int
		firstErr error
		lastErr  error
		pause    = 20 * time.Millisecond
	)
	for len(pending) > 0 {
		if err := b.ensureStream(rctx, topic); err != nil {
			lastErr = err
			if !transient(err) {
				return fmt.Errorf("nats: publish to %s: %w", topic, err)
			}
		} else {
			var retry []int
			retry, failed, firstErr, lastErr = b.publishAsync(rctx, topic, out, pending, failed, firstErr, lastErr)
			pending = retry
			if len(pending) == 0 {
				break
			}
		}
		if rctx.Err() != nil {
			break
		}
		// Wait for the connection, then a little, before trying again.
		if err := b.link.wait(rctx); err != nil {
			if errors.Is(err, driver.ErrClosed) {
				return fmt.Errorf("nats: publish to %s: %w", topic, err)
			}
			break
		}
		select {
		case <-time.After(pause):
			pause = min(2*pause, time.Second)
		case <-rctx.Done():
		}
	}
	if len(pending) > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failed = append(failed, pending...)
		err := fmt.Errorf("nats: not acknowledged within request_timeout %v (last error: %v): %w", b.cfg.RequestTimeout, lastErr, context.DeadlineExceeded)
		if firstErr == nil {
			firstErr = err
		}
	}
	if len(failed) == 0 {
		return nil
	}
	slices.Sort(failed)
	return &driver.BatchError{Failed: failed, Err: firstErr}
}

// publishAsync publishes the messages of out at the indexes in pending and
// waits for their acknowledgements or ctx. It returns the indexes to try
// again (transient errors, or no answer before ctx ended), adds the ones
// refused for good to failed (with the first such error), and returns the
// last error seen.
func (b *broker) publishAsync(ctx context.Context, topic string, out []*natsgo.Msg, pending, failed []int, firstErr, lastErr error) (retry, failedOut []int, firstOut, lastOut error) {
	settle := func(i int, err error) {
		lastErr = err
		switch {
		case errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders):
			b.streams.Delete(topic) // deleted behind our back? look again
			retry = append(retry, i)
		case transient(err):
			retry = append(retry, i)
		default:
			failed = append(failed, i)
			if firstErr == nil {
				firstErr = fmt.Errorf("nats: publish to %s: %w", topic, err)
			}
		}
	}
	w := newBatchWait(len(out))
	w.left++ // held until every message is sent, so done cannot close early
	sent := make([]bool, len(out))
	for _, i := range pending {
		b.acks.expect(out[i], w, i)
		for {
			_, err := b.js.PublishMsgAsync(out[i]) // waits up to 200ms for room in the window
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
				continue // the window is full: wait for room
			}
			if err != nil && b.acks.forget(out[i]) {
				w.mu.Lock()
				w.left--
				w.mu.Unlock()
				settle(i, err)
			} else {
				sent[i] = true
			}
			break
		}
	}
	w.mu.Lock()
	w.left--
	if w.left == 0 {
		close(w.done)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	for _, i := range pending {
		if !sent[i] {
			continue
		}
		if b.acks.forget(out[i]) { // no answer before ctx ended
			retry = append(retry, i)
			continue
		}
		w.mu.Lock()
		err := w.errs[i]
		w.mu.Unlock()
		if err != nil {
			settle(i, err)
		}
	}
	return retry, failed, firstErr, lastErr
}
