package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

var _ driver.GroupLister = (*broker)(nil)

// unknownCount is a count Pub/Sub's API cannot tell (see GroupInfo).
const unknownCount = -1

// ListGroups implements driver.GroupLister. The groups are the
// subscriptions of the project on topic's Pub/Sub topic whose IDs are
// those of a group of topic (ListTopicSubscriptions); other subscriptions
// on the topic are left out. Pub/Sub's API tells no message counts (Cloud
// Monitoring does), so Backlog and DeadLetters are -1. A topic that does
// not exist returns an error wrapping driver.ErrNotFound. It makes one
// request per page of subscriptions, one more when there are none (to
// tell a topic without groups from a missing one), and one per group
// whose subscription ID was shortened.
func (b *broker) ListGroups(ctx context.Context, topic string) ([]driver.GroupInfo, error) {
	tp := topicPath(b.cfg.ProjectID, topicID(topic))
	it := b.client.TopicAdminClient.ListTopicSubscriptions(ctx, &pb.ListTopicSubscriptionsRequest{Topic: tp})
	out := []driver.GroupInfo{}
	for {
		path, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("gcppubsub: topic %s (%s): %w", topic, tp, driver.ErrNotFound)
		}
		if err != nil {
			return nil, wrapErr(ctx, err, "list the subscriptions of %s", tp)
		}
		group, ok, err := b.groupOfSubscription(ctx, topic, path)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, driver.GroupInfo{Name: group, Backlog: unknownCount, DeadLetters: unknownCount})
		}
	}
	if len(out) == 0 {
		// Emulators list no subscriptions for a topic that does not exist,
		// where Pub/Sub answers NotFound: ask.
		_, err := b.client.TopicAdminClient.GetTopic(ctx, &pb.GetTopicRequest{Topic: tp})
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("gcppubsub: topic %s (%s): %w", topic, tp, driver.ErrNotFound)
		}
		if err != nil {
			return nil, wrapErr(ctx, err, "get topic %s", tp)
		}
	}
	slices.SortFunc(out, func(x, y driver.GroupInfo) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// groupOfSubscription returns the group of topic whose subscription path
// is, or false when it is no group's subscription. Most IDs give their
// group back ("T+G", perhaps with the prefix "sy~"). An ID that was
// shortened does not: the group is then read from the subscription's
// filter, which names it unless it is over 180 bytes (see targetValue);
// such a group cannot be named and is logged and left out.
func (b *broker) groupOfSubscription(ctx context.Context, topic, path string) (string, bool, error) {
	id, ok := strings.CutPrefix(path, subscriptionPath(b.cfg.ProjectID, ""))
	if !ok {
		return "", false, nil // a subscription of another project
	}
	g, ok := strings.CutPrefix(strings.TrimPrefix(id, mappedPrefix), topic+sep)
	if ok && pubsub.ValidateGroup(g) == nil && groupID(topic, g) == id {
		return g, true, nil
	}
	if len(id) != maxIDLength || !strings.Contains(id, "~") {
		return "", false, nil
	}
	s, err := b.client.SubscriptionAdminClient.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: path})
	switch {
	case status.Code(err) == codes.NotFound:
		return "", false, nil // deleted meanwhile
	case err != nil:
		return "", false, wrapErr(ctx, err, "get subscription %s", path)
	}
	if g, ok := groupOfFilter(s.GetFilter()); ok && groupID(topic, g) == id {
		return g, true, nil
	}
	b.log.Warn("gcppubsub: a subscription on the topic has the shortened ID of a group whose name it does not tell (a group name over 180 bytes, or a subscription without Switchyard's filter); not listed",
		"topic", topic, "subscription", path)
	return "", false, nil
}

// groupOfFilter returns the group that a subscription filter made by
// groupFilter names, or false when filter is not such a filter or names
// the group by a hash.
func groupOfFilter(filter string) (string, bool) {
	prefix := strings.TrimSuffix(groupFilter(""), `"`) // ... = "
	g, ok := strings.CutPrefix(filter, prefix)
	if !ok {
		return "", false
	}
	g, ok = strings.CutSuffix(g, `"`)
	if !ok || pubsub.ValidateGroup(g) != nil || groupFilter(g) != filter {
		return "", false
	}
	return g, true
}
