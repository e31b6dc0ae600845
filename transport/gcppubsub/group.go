package gcppubsub

import (
	"context"
	"errors"
	"fmt"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// groupRefs names the Pub/Sub resources of one consumer group (see "Topic
// mapping").
type groupRefs struct {
	topic, group string
	topicPath    string // the source topic
	subPath      string // the group's subscription, on the source topic
	deadTopic    string // the group's dead-letter topic
	deadSub      string // the subscription that keeps the group's dead letters
	to           string // attrTo's value for this group
	filter       string // the filter of the group's subscription
}

func (b *broker) refs(topic, group string) groupRefs {
	p := b.cfg.ProjectID
	dl := deadLetterID(topic, group)
	return groupRefs{
		topic: topic, group: group,
		topicPath: topicPath(p, topicID(topic)),
		subPath:   subscriptionPath(p, groupID(topic, group)),
		deadTopic: topicPath(p, dl),
		deadSub:   subscriptionPath(p, dl),
		to:        targetValue(group),
		filter:    groupFilter(group),
	}
}

// CreateGroup implements driver.Broker: it creates the topic, the group's
// subscription (with the default policies; Subscribe sets its own), and the
// group's dead-letter topic and subscription, where missing. With
// DisableAutoCreate it checks that the subscription exists.
func (b *broker) CreateGroup(ctx context.Context, topic, group string) error {
	pol := b.policies(pubsub.DefaultMaxAttempts, pubsub.DefaultBackoffInitial, pubsub.DefaultBackoffMax)
	_, err := b.admin.ensureGroup(ctx, b.refs(topic, group), pol, false)
	return err
}

// DeleteGroup implements driver.Broker: it deletes the group's
// subscription, with the messages it holds, and its dead-letter
// subscription and topic, with its dead letters. A group without a
// subscription returns an error wrapping driver.ErrNotFound (after removing
// dead-letter resources left over, if any).
func (b *broker) DeleteGroup(ctx context.Context, topic, group string) error {
	r := b.refs(topic, group)
	sc, tc := b.client.SubscriptionAdminClient, b.client.TopicAdminClient
	err := sc.DeleteSubscription(ctx, &pb.DeleteSubscriptionRequest{Subscription: r.subPath})
	missing := status.Code(err) == codes.NotFound
	if err != nil && !missing {
		return wrapErr(ctx, err, "delete subscription %s", r.subPath)
	}
	var errs []error
	if err := sc.DeleteSubscription(ctx, &pb.DeleteSubscriptionRequest{Subscription: r.deadSub}); err != nil && status.Code(err) != codes.NotFound {
		errs = append(errs, wrapErr(ctx, err, "delete dead-letter subscription %s", r.deadSub))
	}
	if err := tc.DeleteTopic(ctx, &pb.DeleteTopicRequest{Topic: r.deadTopic}); err != nil && status.Code(err) != codes.NotFound {
		errs = append(errs, wrapErr(ctx, err, "delete dead-letter topic %s", r.deadTopic))
	}
	b.admin.forgetTopic(r.deadTopic)
	if missing {
		errs = append(errs, fmt.Errorf("gcppubsub: group %s of topic %s (subscription %s): %w", group, topic, r.subPath, driver.ErrNotFound))
	}
	return errors.Join(errs...)
}

// Subscribe implements driver.Broker. It sets up the group as CreateGroup
// does, with the policies cfg asks for (see "Delivery semantics"), and
// starts receiving. WithMaxAttempts above 100, Pub/Sub's limit, is an
// ErrInvalidOption. Transient errors while setting up are retried until
// ctx ends.
func (b *broker) Subscribe(ctx context.Context, topic, group string, cfg driver.SubscribeConfig) (driver.Subscription, error) {
	if cfg.MaxAttempts > maxDeliveryAttempts {
		return nil, fmt.Errorf("%w: max attempts %d over Pub/Sub's limit of %d delivery attempts", driver.ErrInvalidOption, cfg.MaxAttempts, maxDeliveryAttempts)
	}
	r := b.refs(topic, group)
	pol := b.policies(cfg.MaxAttempts, cfg.BackoffInitial, cfg.BackoffMax)
	setUp := func(ctx context.Context) (subState, error) { return b.admin.ensureGroup(ctx, r, pol, true) }
	var st subState
	err := retryTransient(ctx, func() (err error) {
		st, err = setUp(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if st.ordered == b.cfg.DisableOrdering {
		cfg.Logger.Warn("gcppubsub: subscription exists with another message ordering setting, which Pub/Sub cannot change; using it as it is",
			"subscription", r.subPath, "ordering", st.ordered)
	}
	if !st.filtered {
		cfg.Logger.Warn("gcppubsub: subscription has no Switchyard filter (made outside Switchyard, or before Switchyard set filters): messages handed back go back by nack and count a delivery attempt, and replays of other groups of the topic reach it",
			"subscription", r.subPath, "want_filter", r.filter)
	}
	return newReceiver(b, r, st, setUp, cfg), nil
}
