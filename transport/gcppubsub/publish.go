package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// publishers holds the client's publisher of each topic the broker sent
// to, made on first use and kept for the broker's life.
type publishers struct {
	b  *broker
	mu sync.Mutex
	m  map[string]*topicPublisher
}

// topicPublisher is the client's publisher of one topic.
type topicPublisher struct {
	path string
	pub  *gpubsub.Publisher
	// mu is held for reading while messages are handed to pub, and for
	// writing while paused keys are resumed together with the messages
	// sent again, so that nothing overtakes those.
	mu sync.RWMutex
}

func newPublishers(b *broker) *publishers {
	return &publishers{b: b, m: map[string]*topicPublisher{}}
}

// get returns the publisher of the topic at path, made on first use with
// message ordering enabled (required to publish with ordering keys;
// messages without a key are still sent concurrently) and otherwise the
// client's default settings but for the count threshold.
func (ps *publishers) get(path string) *topicPublisher {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	tp := ps.m[path]
	if tp == nil {
		p := ps.b.client.Publisher(path)
		p.EnableMessageOrdering = true
		// Requests of up to 1,000 messages rather than 100: a large batch
		// takes a tenth of the round-trips. Small publishes still go out
		// after the 10ms delay threshold.
		p.PublishSettings.CountThreshold = gpubsub.MaxPublishRequestCount
		tp = &topicPublisher{path: path, pub: p}
		ps.m[path] = tp
	}
	return tp
}

// stop flushes and stops every publisher.
func (ps *publishers) stop() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, tp := range ps.m {
		wg.Go(tp.pub.Stop)
	}
	wg.Wait()
}

// SendBatch implements driver.Broker. It hands every message to the
// client's batching publisher for topic at once and waits for every result,
// so batches and concurrent calls share publish requests. On the first use
// of a topic it creates the topic if missing (unless DisableAutoCreate), and
// when Pub/Sub reports the topic missing later (deleted, or an emulator
// restarted) it creates it again and sends the failed messages once more.
// When messages fail it returns a *driver.BatchError with their indexes; a
// failed message with an ordering key leaves the key paused (see
// OrderingKeys).
func (b *broker) SendBatch(ctx context.Context, topic string, msgs []*driver.Message) error {
	path := topicPath(b.cfg.ProjectID, topicID(topic))
	if err := b.admin.ensureTopic(ctx, path); err != nil {
		return err
	}
	gms := make([]*gpubsub.Message, len(msgs))
	for i, m := range msgs {
		gms[i] = encode(m)
	}
	return b.send(ctx, path, gms)
}

// send publishes gms to the topic at path (see SendBatch).
func (b *broker) send(ctx context.Context, path string, gms []*gpubsub.Message) error {
	tp := b.pubs.get(path)
	errs, err := tp.publishAll(ctx, gms, false)
	if err != nil {
		return err // ctx's
	}
	failed, first := failures(errs)
	if first != nil && status.Code(first) == codes.NotFound && !b.cfg.DisableAutoCreate {
		// The topic is gone: create it again and publish what failed once
		// more, in order, resuming the keys the failure paused in the same
		// step.
		b.admin.forgetTopic(path)
		if err := b.admin.ensureTopic(ctx, path); err != nil {
			return err
		}
		retry := make([]*gpubsub.Message, len(failed))
		for i, j := range failed {
			retry[i] = gms[j]
		}
		rerrs, err := tp.publishAll(ctx, retry, true)
		if err != nil {
			return err
		}
		for i, j := range failed {
			errs[j] = rerrs[i]
		}
		failed, first = failures(errs)
	}
	if first == nil {
		return nil
	}
	if status.Code(first) == codes.NotFound {
		b.admin.forgetTopic(path)
	}
	return &driver.BatchError{Failed: failed, Err: fmt.Errorf("gcppubsub: publish to %s: %w", path, first)}
}

// failures returns the indexes of the non-nil errors and the first of them.
func failures(errs []error) (failed []int, first error) {
	for i, err := range errs {
		if err != nil {
			failed = append(failed, i)
			if first == nil {
				first = err
			}
		}
	}
	return failed, first
}

// publishAll hands every message to the publisher, then waits for all
// results, and returns each message's error, or ctx's error if ctx ended
// first. With resume, the ordering keys of gms are resumed first, in the
// same step as the messages are handed over. A failure with an ordering key
// leaves the key paused (see OrderingKeys): the message's error says so, and
// later messages of the key fail with driver.ErrOrderingKeyPaused.
func (tp *topicPublisher) publishAll(ctx context.Context, gms []*gpubsub.Message, resume bool) ([]error, error) {
	results := make([]*gpubsub.PublishResult, len(gms))
	if resume {
		tp.mu.Lock()
		for _, m := range gms {
			if m.OrderingKey != "" {
				tp.pub.ResumePublish(m.OrderingKey)
			}
		}
	} else {
		tp.mu.RLock()
	}
	for i, m := range gms {
		results[i] = tp.pub.Publish(ctx, m)
	}
	if resume {
		tp.mu.Unlock()
	} else {
		tp.mu.RUnlock()
	}
	errs := make([]error, len(gms))
	for i, res := range results {
		_, err := res.Get(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, ctx.Err()
		}
		errs[i] = pausedErr(err, gms[i].OrderingKey)
	}
	return errs, nil
}

// pausedErr says what err, the failure of a message with ordering key key,
// did to the key.
func pausedErr(err error, key string) error {
	if key == "" {
		return err
	}
	if errors.As(err, new(gpubsub.ErrPublishingPaused)) {
		return fmt.Errorf("ordering key %q is paused after an earlier failure; resume it with OrderingKeys (see Client.As): %w", key, driver.ErrOrderingKeyPaused)
	}
	return fmt.Errorf("%w (ordering key %q is now paused: %w)", err, key, driver.ErrOrderingKeyPaused)
}
