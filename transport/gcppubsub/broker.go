package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/internal/lifecycle"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Broker is a Google Cloud Pub/Sub client for one project. It implements
// pubsub.Broker, pubsub.GroupCreator and pubsub.Pinger and is safe for
// concurrent use.
type Broker struct {
	cfg      Config
	emulator bool // PUBSUB_EMULATOR_HOST was set at New
	client   *gpubsub.Client
	enc      encoder
	admin    *admin
	subs     lifecycle.Subscriptions

	mu         sync.RWMutex // held for reading by Publish, for writing by Close
	closed     bool         // guarded by mu; set by Close after the subscriptions stopped
	publishers map[string]*gpubsub.Publisher
	pubMu      sync.Mutex // guards publishers
}

var (
	_ pubsub.Broker       = (*Broker)(nil)
	_ pubsub.GroupCreator = (*Broker)(nil)
	_ pubsub.Pinger       = (*Broker)(nil)
)

// New returns a Broker for cfg.ProjectID, configured by cfg (see Config for
// the defaults). It does not block: the gRPC connection is made on first use.
// It honours PUBSUB_EMULATOR_HOST as Google's clients do (plain gRPC to that
// address, no credentials); otherwise it finds Application Default
// Credentials, and fails if there are none.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	client, err := gpubsub.NewClient(ctx, cfg.ProjectID, cfg.ClientOptions...)
	if err != nil {
		return nil, wrapErr(ctx, err, "client for project %s", cfg.ProjectID)
	}
	b := &Broker{
		cfg: cfg, client: client, enc: encoder{maxBytes: cfg.MaxMessageBytes}, publishers: map[string]*gpubsub.Publisher{},
		emulator: os.Getenv("PUBSUB_EMULATOR_HOST") != "",
	}
	b.admin = newAdmin(b)
	return b, nil
}

// OpenURL returns a Broker for a URL of the form
//
//	gcppubsub://PROJECT_ID[?create=BOOL&ordering=BOOL&max_message_bytes=N&ack_deadline=DURATION&streams=N]
//
// whose query parameters set Config fields: create=false sets
// DisableAutoCreate, ordering=false DisableOrdering, and max_message_bytes,
// ack_deadline (for example 30s) and streams set MaxMessageBytes,
// AckDeadline and ReceiveStreams. Unknown parameters, a path, and user
// information (credentials do not belong in the URL) are errors.
func OpenURL(ctx context.Context, u *url.URL) (*Broker, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// Publish implements pubsub.Publisher. It validates every message against
// Pub/Sub's limits first (see "Errors"), then hands them all to the client's
// batching publisher for topic at once and waits for every result, so
// batches and concurrent calls share publish requests. On the first use of a
// topic it creates the topic if missing (unless DisableAutoCreate). While
// Pub/Sub is unreachable the client retries each request for up to 60s;
// Publish waits meanwhile, bounded by ctx.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed || b.subs.Closed() {
		return pubsub.ErrClosed
	}
	if err := pubsub.ValidateTopic(topic); err != nil {
		return err
	}
	for i, m := range msgs {
		if err := b.enc.check(topic, i, len(msgs), m); err != nil {
			return err
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	path := topicPath(b.cfg.ProjectID, resourceID(topic))
	if err := b.admin.ensureTopic(ctx, path); err != nil {
		return err
	}
	pubsub.AssignIDs(msgs)
	pub := b.publisher(path)
	failed, first, err := publishAll(ctx, pub, msgs)
	if err != nil {
		return err // ctx's
	}
	if first != nil && status.Code(first) == codes.NotFound && !b.cfg.DisableAutoCreate {
		// The topic is gone (deleted, or an emulator restarted): create it
		// again and publish what failed once more.
		b.admin.forgetTopic(path)
		if err := b.admin.ensureTopic(ctx, path); err != nil {
			return err
		}
		retry := make([]*pubsub.Message, len(failed))
		for i, j := range failed {
			retry[i] = msgs[j]
		}
		if failed, first, err = publishAll(ctx, pub, retry); err != nil {
			return err
		}
	}
	if first == nil {
		return nil
	}
	if status.Code(first) == codes.NotFound {
		b.admin.forgetTopic(path)
	}
	return fmt.Errorf("gcppubsub: publish to %s: %d of %d messages failed, first: %w", path, len(failed), len(msgs), first)
}

// publishAll hands every message to pub, then waits for all results. It
// returns the indexes of the messages that failed and the first failure, or
// ctx's error if ctx ended first. A failed message with an ordering key has
// its key resumed, which the client pauses after a failure.
func publishAll(ctx context.Context, pub *gpubsub.Publisher, msgs []*pubsub.Message) (failed []int, first, ctxErr error) {
	results := make([]*gpubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = pub.Publish(ctx, encode(m))
	}
	for i, res := range results {
		_, err := res.Get(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			// Results still pending finish in the background; resume the
			// keys of those that fail.
			go resumeFailed(pub, msgs[i:], results[i:])
			return nil, nil, ctx.Err()
		}
		failed = append(failed, i)
		if first == nil {
			first = err
		}
		if k := msgs[i].Key; k != "" {
			pub.ResumePublish(k)
		}
	}
	return failed, first, nil
}

// resumeFailed waits for the results of a Publish that returned early and
// resumes the ordering keys of the messages that failed.
func resumeFailed(pub *gpubsub.Publisher, msgs []*pubsub.Message, results []*gpubsub.PublishResult) {
	for i, res := range results {
		if _, err := res.Get(context.Background()); err != nil && msgs[i].Key != "" {
			pub.ResumePublish(msgs[i].Key)
		}
	}
}

// publisher returns the client's publisher for the topic at path, made on
// first use with message ordering enabled (required to publish with ordering
// keys; messages without a key are still sent concurrently) and otherwise
// the client's default settings but for the count threshold.
func (b *Broker) publisher(path string) *gpubsub.Publisher {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	p := b.publishers[path]
	if p == nil {
		p = b.client.Publisher(path)
		p.EnableMessageOrdering = true
		// Requests of up to 1,000 messages rather than 100: a large batch
		// takes a tenth of the round-trips. Small publishes still go out
		// after the 10ms delay threshold.
		p.PublishSettings.CountThreshold = gpubsub.MaxPublishRequestCount
		b.publishers[path] = p
	}
	return p
}

// CreateGroup implements pubsub.GroupCreator: it creates the topic and the
// group's subscription "<topic>.<group>" if missing (with message ordering
// unless DisableOrdering, and no expiry), so that the group keeps messages
// from now on. With DisableAutoCreate it only validates the names.
func (b *Broker) CreateGroup(ctx context.Context, topic, group string) error {
	if b.subs.Closed() {
		return pubsub.ErrClosed
	}
	if err := errors.Join(pubsub.ValidateTopic(topic), pubsub.ValidateGroup(group)); err != nil {
		return err
	}
	tp := topicPath(b.cfg.ProjectID, resourceID(topic))
	if err := b.admin.ensureTopic(ctx, tp); err != nil {
		return err
	}
	_, err := b.admin.ensureSubscription(ctx, subSpec{path: subscriptionPath(b.cfg.ProjectID, subscriptionID(topic, group)), topicPath: tp})
	return err
}

// Subscribe implements pubsub.Subscriber. It creates the topic, the
// dead-letter topic and the subscription "<topic>.<group>" when missing, sets
// the subscription's dead-letter policy (which makes Pub/Sub count delivery
// attempts), and starts receiving. WithMaxAttempts above 100, Pub/Sub's
// limit, is an ErrInvalidOption. See "Delivery semantics" for retries,
// ordering and what survives a crash.
func (b *Broker) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	if b.subs.Closed() {
		return nil, pubsub.ErrClosed
	}
	cfg, err := pubsub.NewSubscribeConfig(topic, group, opts...)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", pubsub.ErrInvalidOption)
	}
	if cfg.MaxAttempts > maxDeliveryAttempts {
		return nil, fmt.Errorf("%w: max attempts %d over Pub/Sub's limit of %d delivery attempts", pubsub.ErrInvalidOption, cfg.MaxAttempts, maxDeliveryAttempts)
	}
	project := b.cfg.ProjectID
	tp := topicPath(project, resourceID(topic))
	dlq := topicPath(project, resourceID(cfg.DeadLetterTopic))
	spec := subSpec{
		path:       subscriptionPath(project, subscriptionID(topic, group)),
		topicPath:  tp,
		deadLetter: deadLetterPolicy(dlq, cfg.MaxAttempts),
	}
	setUp := func(ctx context.Context) (ordered bool, err error) {
		for _, p := range []string{tp, dlq} {
			if err := b.admin.ensureTopic(ctx, p); err != nil {
				return false, err
			}
		}
		return b.admin.ensureSubscription(ctx, spec)
	}
	ordered, err := setUp(ctx)
	if err != nil {
		return nil, err
	}
	if ordered == b.cfg.DisableOrdering {
		cfg.Logger.Warn("gcppubsub: subscription exists with another message ordering setting, which Pub/Sub cannot change; using it as it is",
			"subscription", spec.path, "ordering", ordered)
	}
	var recreate func(context.Context) error
	if !b.cfg.DisableAutoCreate {
		// With the subscription, the dead-letter group that
		// StartSubscription creates is likely gone too.
		dlqGroup := subSpec{path: subscriptionPath(project, subscriptionID(cfg.DeadLetterTopic, group)), topicPath: dlq}
		recreate = func(ctx context.Context) error {
			b.admin.forgetTopic(tp)
			b.admin.forgetTopic(dlq)
			if _, err := setUp(ctx); err != nil {
				return err
			}
			_, err := b.admin.ensureSubscription(ctx, dlqGroup)
			return err
		}
	}
	// pstest counts a message's deliveries to every subscription of its
	// topic together; on an emulator its count is used only while the
	// topic has a single subscription.
	var trust func() bool
	if b.emulator {
		trust = b.admin.soleSubscription(tp)
	}
	return b.subs.Start(func(onStop func()) (*pubsub.Subscription, error) {
		gs := b.client.Subscriber(spec.path)
		gs.ReceiveSettings.MaxOutstandingMessages = 2 * cfg.Concurrency
		gs.ReceiveSettings.NumGoroutines = b.cfg.ReceiveStreams
		// Leases are extended through every retry backoff too: an hour (the
		// client's default) plus the longest schedule of backoffs.
		gs.ReceiveSettings.MaxExtension = time.Hour + time.Duration(cfg.MaxAttempts)*cfg.BackoffMax
		r := newReceiver(gs, receiverOptions{path: spec.path, ordered: ordered, trustCount: trust, recreate: recreate})
		s, err := pubsub.StartSubscription(ctx, cfg, r, b, h, onStop)
		if err != nil {
			_ = r.Close()
			return nil, err
		}
		return s, nil
	})
}

// Ping implements pubsub.Pinger: it asks Pub/Sub about a topic that never
// exists ("sy~ping", outside the names the broker maps to) and reports ready
// when the service answers with the topic or with NotFound or
// PermissionDenied (reachable, credentials accepted; an identity that may
// only publish cannot read topics). Other answers, such as Unavailable or
// Unauthenticated, are errors naming the project; context errors come back
// unwrapped. After Close it returns pubsub.ErrClosed.
func (b *Broker) Ping(ctx context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed || b.subs.Closed() {
		return pubsub.ErrClosed
	}
	path := topicPath(b.cfg.ProjectID, pingTopicID)
	_, err := b.client.TopicAdminClient.GetTopic(ctx, &pb.GetTopicRequest{Topic: path})
	switch status.Code(err) {
	case codes.OK, codes.NotFound, codes.PermissionDenied:
		return nil
	}
	return wrapErr(ctx, err, "ping Pub/Sub for project %s", b.cfg.ProjectID)
}

// Close closes every Subscription made by this Broker, waiting for each to
// drain, waits for Publish calls in progress, then stops the topic
// publishers and closes the client. Later calls return pubsub.ErrClosed.
// Topics and subscriptions stay on Pub/Sub. Close is idempotent.
func (b *Broker) Close() error {
	subsErr := b.subs.Close()
	b.mu.Lock() // waits for running Publish calls
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.pubMu.Lock()
	var wg sync.WaitGroup
	for _, p := range b.publishers {
		wg.Go(p.Stop)
	}
	wg.Wait()
	b.pubMu.Unlock()
	var clientErr error
	if err := b.client.Close(); err != nil {
		clientErr = fmt.Errorf("gcppubsub: close client of project %s: %w", b.cfg.ProjectID, err)
	}
	return errors.Join(subsErr, clientErr)
}
