package gcppubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Pub/Sub's range for a dead-letter policy's max delivery attempts.
const (
	minDeliveryAttempts = 5
	maxDeliveryAttempts = 100
)

// subSpec is what the broker wants of a subscription.
type subSpec struct {
	path, topicPath string
	// deadLetter, when set, is the dead-letter policy Subscribe wants;
	// CreateGroup leaves it nil and so does not touch an existing policy.
	deadLetter *pb.DeadLetterPolicy
}

// deadLetterPolicy returns the policy for a subscription whose messages are
// dead-lettered by the portable layer after maxAttempts deliveries: Pub/Sub
// counts the attempts (which is why the policy is there at all) and forwards
// a message itself only after one delivery more, clamped to its 5..100
// range, so that it acts only when the portable layer could not (a consumer
// that crashed during the last attempt).
func deadLetterPolicy(dlqTopicPath string, maxAttempts int) *pb.DeadLetterPolicy {
	n := min(max(maxAttempts+1, minDeliveryAttempts), maxDeliveryAttempts)
	return &pb.DeadLetterPolicy{DeadLetterTopic: dlqTopicPath, MaxDeliveryAttempts: int32(n)}
}

// admin creates topics and subscriptions on first use and remembers which it
// has seen, so that each costs one round-trip per broker.
type admin struct {
	b *Broker

	mu     sync.Mutex
	topics map[string]*sync.Mutex // per topic path; present once ensured or being ensured
	known  map[string]bool        // topic paths known to exist
}

func newAdmin(b *Broker) *admin {
	return &admin{b: b, topics: map[string]*sync.Mutex{}, known: map[string]bool{}}
}

// ensureTopic creates the topic at path unless it exists (or this broker
// already saw it, or auto-creation is disabled).
func (a *admin) ensureTopic(ctx context.Context, path string) error {
	if a.b.cfg.DisableAutoCreate {
		return nil
	}
	a.mu.Lock()
	if a.known[path] {
		a.mu.Unlock()
		return nil
	}
	l := a.topics[path]
	if l == nil {
		l = &sync.Mutex{}
		a.topics[path] = l
	}
	a.mu.Unlock()

	l.Lock() // one creation per topic at a time; the others wait for it
	defer l.Unlock()
	a.mu.Lock()
	done := a.known[path]
	a.mu.Unlock()
	if done {
		return nil
	}
	_, err := a.b.client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: path})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return wrapErr(ctx, err, "create topic %s", path)
	}
	a.mu.Lock()
	a.known[path] = true
	a.mu.Unlock()
	return nil
}

// forgetTopic makes the next ensureTopic of path ask Pub/Sub again (the
// topic was found missing).
func (a *admin) forgetTopic(path string) {
	a.mu.Lock()
	delete(a.known, path)
	a.mu.Unlock()
}

// ensureSubscription creates the subscription s describes unless it exists,
// and reports whether it delivers in order. An existing one must belong to
// s's topic (two topic/group pairs can map to one ID); when s has a
// dead-letter policy that differs from the existing one's, it is updated (the
// last Subscribe's options win). Message ordering cannot be changed on an
// existing subscription: the caller follows what it has. With auto-creation
// disabled it does nothing and reports the configured ordering.
func (a *admin) ensureSubscription(ctx context.Context, s subSpec) (ordered bool, err error) {
	cfg := a.b.cfg
	if cfg.DisableAutoCreate {
		return !cfg.DisableOrdering, nil
	}
	sc := a.b.client.SubscriptionAdminClient
	want := &pb.Subscription{
		Name:                  s.path,
		Topic:                 s.topicPath,
		AckDeadlineSeconds:    int32(cfg.AckDeadline / time.Second),
		EnableMessageOrdering: !cfg.DisableOrdering,
		DeadLetterPolicy:      s.deadLetter,
		// A policy without TTL: the subscription never expires, as a
		// consumer group lives until deleted (Pub/Sub's default deletes
		// subscriptions idle for 31 days).
		ExpirationPolicy: &pb.ExpirationPolicy{},
	}
	got, err := sc.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: s.path})
	if status.Code(err) == codes.NotFound {
		_, err = sc.CreateSubscription(ctx, want)
		if err == nil {
			return want.EnableMessageOrdering, nil
		}
		if status.Code(err) != codes.AlreadyExists {
			return false, wrapErr(ctx, err, "create subscription %s on topic %s", s.path, s.topicPath)
		}
		// Another process created it meanwhile: check it as an existing one.
		got, err = sc.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: s.path})
	}
	if err != nil {
		return false, wrapErr(ctx, err, "get subscription %s", s.path)
	}
	if got.GetTopic() != s.topicPath {
		return false, fmt.Errorf("gcppubsub: subscription %s belongs to topic %s, not %s (two topic/group pairs map to one subscription ID; rename one): %w",
			s.path, got.GetTopic(), s.topicPath, pubsub.ErrInvalidGroup)
	}
	ordered = got.GetEnableMessageOrdering()
	if s.deadLetter == nil || samePolicy(got.GetDeadLetterPolicy(), s.deadLetter) {
		return ordered, nil
	}
	_, err = sc.UpdateSubscription(ctx, &pb.UpdateSubscriptionRequest{
		Subscription: &pb.Subscription{Name: s.path, DeadLetterPolicy: s.deadLetter},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"dead_letter_policy"}},
	})
	return ordered, wrapErr(ctx, err, "set dead-letter policy of subscription %s (topic %s after %d deliveries)",
		s.path, s.deadLetter.GetDeadLetterTopic(), s.deadLetter.GetMaxDeliveryAttempts())
}

// soleSubscription returns a function that reports whether the topic at
// path has at most one subscription, asking Pub/Sub at most once a second
// and keeping its last answer when asking fails.
func (a *admin) soleSubscription(path string) func() bool {
	var (
		mu    sync.Mutex
		asked time.Time
		sole  = true
	)
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(asked) < time.Second {
			return sole
		}
		asked = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		it := a.b.client.TopicAdminClient.ListTopicSubscriptions(ctx, &pb.ListTopicSubscriptionsRequest{Topic: path, PageSize: 2})
		n := 0
		for n < 2 {
			_, err := it.Next()
			if err == iterator.Done {
				break
			}
			if err != nil {
				return sole
			}
			n++
		}
		sole = n <= 1
		return sole
	}
}

func samePolicy(a, b *pb.DeadLetterPolicy) bool {
	return a.GetDeadLetterTopic() == b.GetDeadLetterTopic() && a.GetMaxDeliveryAttempts() == b.GetMaxDeliveryAttempts()
}
