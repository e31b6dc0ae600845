package gcppubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Pub/Sub's range for a dead-letter policy's max delivery attempts.
const (
	minDeliveryAttempts = 5
	maxDeliveryAttempts = 100
)

// deadLetterAckDeadline is the ack deadline of dead-letter subscriptions:
// how long the admin calls lease the dead letters they read.
const deadLetterAckDeadline = 60 * time.Second

// maxRetryBackoff is the longest backoff of a retry policy.
const maxRetryBackoff = 600 * time.Second

// subPolicies are the policies the broker wants on a group's subscription.
type subPolicies struct {
	// deadLetter makes Pub/Sub count delivery attempts, and forward a
	// message to the group's dead-letter topic itself after one delivery
	// more than the portable layer allows (so only when members kept
	// crashing while holding it). Nil: none.
	deadLetter *pb.DeadLetterPolicy
	// retry makes Pub/Sub wait before delivering a nacked message again:
	// retries wait out their backoff on Pub/Sub, outside the members'
	// flow-control windows. Nil: none.
	retry *pb.RetryPolicy
}

// policies returns the policies for a subscription whose messages are
// dead-lettered by the portable layer after maxAttempts handler runs, with
// retries backing off from initial to most: a dead-letter policy of
// maxAttempts+1 deliveries, within Pub/Sub's range of 5 to 100 (its topic
// is filled in by ensureGroup), and a retry policy from initial to most,
// within Pub/Sub's 0 to 600 seconds.
func (b *broker) policies(maxAttempts int, initial, most time.Duration) subPolicies {
	n := min(max(maxAttempts+1, minDeliveryAttempts), maxDeliveryAttempts)
	lo := min(initial, maxRetryBackoff)
	return b.emulated(subPolicies{
		deadLetter: &pb.DeadLetterPolicy{MaxDeliveryAttempts: int32(n)},
		retry: &pb.RetryPolicy{
			MinimumBackoff: durationpb.New(lo),
			MaximumBackoff: durationpb.New(min(max(most, lo), maxRetryBackoff)),
		},
	})
}

// subState is what the broker found of a group's subscription.
type subState struct {
	ordered bool // it delivers each ordering key's messages in order
	// filtered: it has the group's filter, so a message sent back to the
	// topic for this group (attrTo) reaches this group alone.
	filtered bool
	counts   bool // it has a dead-letter policy: Pub/Sub counts deliveries
	delays   bool // it has a retry policy: a nacked message comes back after a backoff
}

// admin creates topics and subscriptions and remembers which topics it has
// seen, so that each costs one round-trip per broker.
type admin struct {
	b *broker

	mu     sync.Mutex
	topics map[string]*sync.Mutex // per topic path; present once ensured or being ensured
	known  map[string]bool        // topic paths known to exist
}

func newAdmin(b *broker) *admin {
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

// ensureGroup creates what is missing of the group r names: its topic, its
// subscription (with pol, and with update the policies of an existing one
// set to pol), its dead-letter topic and dead-letter subscription. With
// DisableAutoCreate it only reads the subscription. It reports what the
// subscription is.
func (a *admin) ensureGroup(ctx context.Context, r groupRefs, pol subPolicies, update bool) (subState, error) {
	cfg := a.b.cfg
	if cfg.DisableAutoCreate {
		return a.readGroup(ctx, r)
	}
	for _, p := range []string{r.topicPath, r.deadTopic} {
		if err := a.ensureTopic(ctx, p); err != nil {
			return subState{}, err
		}
	}
	if pol.deadLetter != nil {
		pol.deadLetter.DeadLetterTopic = r.deadTopic
	}
	st, err := a.ensureSubscription(ctx, r, pol, update)
	if err != nil {
		return subState{}, err
	}
	return st, a.ensureDeadLetterSub(ctx, r)
}

// readGroup reports what the group's subscription is, without changing
// anything (DisableAutoCreate). An identity that may not read it gets what
// "Topic mapping" asks of subscriptions made outside Switchyard.
func (a *admin) readGroup(ctx context.Context, r groupRefs) (subState, error) {
	got, err := a.b.client.SubscriptionAdminClient.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: r.subPath})
	switch status.Code(err) {
	case codes.OK:
		return a.stateOf(got, r), nil
	case codes.PermissionDenied:
		return a.b.trusted(subState{ordered: !a.b.cfg.DisableOrdering, filtered: true, counts: true, delays: true}), nil
	}
	return subState{}, wrapErr(ctx, err, "get subscription %s", r.subPath)
}

func (a *admin) stateOf(s *pb.Subscription, r groupRefs) subState {
	return a.b.trusted(subState{
		ordered:  s.GetEnableMessageOrdering(),
		filtered: s.GetFilter() == r.filter,
		counts:   s.GetDeadLetterPolicy() != nil,
		delays:   s.GetRetryPolicy() != nil,
	})
}

// ensureSubscription creates the group's subscription unless it exists and
// reports what it is. An existing one must be attached to the group's
// topic; with update, policies that differ from pol are set (the last
// Subscribe's options win). Message ordering and the filter cannot be
// changed on an existing subscription: the caller follows what it has.
func (a *admin) ensureSubscription(ctx context.Context, r groupRefs, pol subPolicies, update bool) (subState, error) {
	cfg := a.b.cfg
	sc := a.b.client.SubscriptionAdminClient
	want := &pb.Subscription{
		Name:                  r.subPath,
		Topic:                 r.topicPath,
		Filter:                r.filter,
		AckDeadlineSeconds:    int32(cfg.AckDeadline / time.Second),
		EnableMessageOrdering: !cfg.DisableOrdering,
		DeadLetterPolicy:      pol.deadLetter,
		RetryPolicy:           pol.retry,
		// A policy without TTL: the subscription never expires, as a
		// consumer group lives until deleted (Pub/Sub's default deletes
		// subscriptions idle for 31 days).
		ExpirationPolicy: &pb.ExpirationPolicy{},
	}
	got, err := sc.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: r.subPath})
	if status.Code(err) == codes.NotFound {
		_, err = sc.CreateSubscription(ctx, want)
		if err == nil {
			return a.stateOf(want, r), nil
		}
		if status.Code(err) != codes.AlreadyExists {
			return subState{}, wrapErr(ctx, err, "create subscription %s on topic %s", r.subPath, r.topicPath)
		}
		// Another process created it meanwhile: check it as an existing one.
		got, err = sc.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: r.subPath})
	}
	if err != nil {
		return subState{}, wrapErr(ctx, err, "get subscription %s", r.subPath)
	}
	if got.GetTopic() != r.topicPath {
		return subState{}, fmt.Errorf("gcppubsub: subscription %s is attached to %s, not %s (detached when its topic was deleted?); delete the group and subscribe again",
			r.subPath, got.GetTopic(), r.topicPath)
	}
	var mask []string
	if update && !samePolicy(got.GetDeadLetterPolicy(), pol.deadLetter) {
		mask = append(mask, "dead_letter_policy")
	}
	if update && !sameRetry(got.GetRetryPolicy(), pol.retry) {
		mask = append(mask, "retry_policy")
	}
	if len(mask) == 0 {
		return a.stateOf(got, r), nil
	}
	_, err = sc.UpdateSubscription(ctx, &pb.UpdateSubscriptionRequest{
		Subscription: &pb.Subscription{Name: r.subPath, DeadLetterPolicy: pol.deadLetter, RetryPolicy: pol.retry},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: mask},
	})
	if err != nil {
		return subState{}, wrapErr(ctx, err, "set policies %v of subscription %s", mask, r.subPath)
	}
	got.DeadLetterPolicy = pol.deadLetter
	return a.stateOf(got, r), nil
}

// ensureDeadLetterSub creates the subscription that keeps the group's dead
// letters unless it exists; an existing one must be attached to the group's
// dead-letter topic, or dead letters published there would be lost.
func (a *admin) ensureDeadLetterSub(ctx context.Context, r groupRefs) error {
	sc := a.b.client.SubscriptionAdminClient
	_, err := sc.CreateSubscription(ctx, &pb.Subscription{
		Name:                     r.deadSub,
		Topic:                    r.deadTopic,
		AckDeadlineSeconds:       int32(deadLetterAckDeadline / time.Second),
		MessageRetentionDuration: durationpb.New(a.b.cfg.DeadLetterRetention),
		ExpirationPolicy:         &pb.ExpirationPolicy{},
	})
	if err == nil {
		return nil
	}
	if status.Code(err) != codes.AlreadyExists {
		return wrapErr(ctx, err, "create dead-letter subscription %s on topic %s", r.deadSub, r.deadTopic)
	}
	got, err := sc.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: r.deadSub})
	if err != nil {
		return wrapErr(ctx, err, "get dead-letter subscription %s", r.deadSub)
	}
	if got.GetTopic() != r.deadTopic {
		return fmt.Errorf("gcppubsub: dead-letter subscription %s is attached to %s, not %s (detached when its topic was deleted?); its dead letters would be lost",
			r.deadSub, got.GetTopic(), r.deadTopic)
	}
	return nil
}

func sameRetry(a, b *pb.RetryPolicy) bool {
	return (a == nil) == (b == nil) &&
		a.GetMinimumBackoff().AsDuration() == b.GetMinimumBackoff().AsDuration() &&
		a.GetMaximumBackoff().AsDuration() == b.GetMaximumBackoff().AsDuration()
}

func samePolicy(a, b *pb.DeadLetterPolicy) bool {
	return (a == nil) == (b == nil) && a.GetDeadLetterTopic() == b.GetDeadLetterTopic() && a.GetMaxDeliveryAttempts() == b.GetMaxDeliveryAttempts()
}

// retryTransient calls fn until it returns nil, an error other than a
// transient one (Pub/Sub unavailable or overloaded), or ctx ends.
func retryTransient(ctx context.Context, fn func() error) error {
	pause := 100 * time.Millisecond
	for {
		err := fn()
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		default:
			return err
		}
		select {
		case <-time.After(pause):
			pause = min(2*pause, 5*time.Second)
		case <-ctx.Done():
			return err
		}
	}
}
