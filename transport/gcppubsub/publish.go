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
// When messages fail it returns a *driver.BatchError with their indexes.
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
	errs, err := tp.publishAll(ctx, gms)
	if err != nil {
		return err // ctx's
	}
	failed, first := failures(errs)
	if first != nil && status.Code(first) == codes.NotFound && !b.cfg.DisableAutoCreate {
		// The topic is gone: create it again and publish what failed once
		// more, in order.
		b.admin.forgetTopic(path)
		if err := b.admin.ensureTopic(ctx, path); err != nil {
			return err
		}
		retry := make([]*gpubsub.Message, len(failed))
		for i, j := range failed {
			retry[i] = gms[j]
		}
		rerrs, err := tp.publishAll(ctx, retry)
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
// first. A failed message with an ordering key has its key resumed, which
// the client pauses after a failure.
func (tp *topicPublisher) publishAll(ctx context.Context, gms []*gpubsub.Message) ([]error, error) {
	results := make([]*gpubsub.PublishResult, len(gms))
	for i, m := range gms {
		results[i] = tp.pub.Publish(ctx, m)
	}
	errs := make([]error, len(gms))
	for i, res := range results {
		_, err := res.Get(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			go tp.resumeFailed(gms[i:], results[i:])
			return nil, ctx.Err()
		}
		errs[i] = err
		if k := gms[i].OrderingKey; k != "" {
			tp.pub.ResumePublish(k)
		}
	}
	return errs, nil
}

// resumeFailed waits for the results of a publish that returned early and
// resumes the ordering keys of the messages that failed.
func (tp *topicPublisher) resumeFailed(gms []*gpubsub.Message, results []*gpubsub.PublishResult) {
	for i, res := range results {
		if _, err := res.Get(context.Background()); err != nil && gms[i].OrderingKey != "" {
			tp.pub.ResumePublish(gms[i].OrderingKey)
		}
	}
}
