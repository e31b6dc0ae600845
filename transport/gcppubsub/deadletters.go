package gcppubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Attributes Pub/Sub sets on a message it forwards to a dead-letter topic
// itself (after its dead-letter policy's max delivery attempts).
const (
	attrPubSubDeadLetterCount = "CloudPubSubDeadLetterSourceDeliveryCount"
	attrPubSubDeadLetterSub   = "CloudPubSubDeadLetterSourceSubscription"
)

// maxAckIDs is how many ack IDs one Acknowledge or ModifyAckDeadline
// request carries.
const maxAckIDs = 1000

// storeDeadLetter publishes dl to the group's dead-letter topic. When
// Pub/Sub reports the topic missing it sets the group's dead-letter topic and
// subscription up again (unless DisableAutoCreate) and tries once more; it
// never creates the topic alone, whose dead letters no subscription would
// keep.
func (b *broker) storeDeadLetter(ctx context.Context, r groupRefs, dl *driver.Message) error {
	tp := b.pubs.get(r.deadTopic)
	g := encode(dl)
	err := tp.publishOne(ctx, g)
	if status.Code(err) == codes.NotFound && !b.cfg.DisableAutoCreate && ctx.Err() == nil {
		b.admin.forgetTopic(r.deadTopic)
		if err := b.admin.ensureTopic(ctx, r.deadTopic); err != nil {
			return err
		}
		if err := b.admin.ensureDeadLetterSub(ctx, r); err != nil {
			return err
		}
		err = tp.publishOne(ctx, g)
	}
	return wrapErr(ctx, err, "store dead letter %s of group %s in %s", dl.ID, r.group, r.deadTopic)
}

// publishOne publishes g and waits for the result. A dead-letter topic's
// order does not matter: an ordering key paused by a failure is resumed at
// once.
func (tp *topicPublisher) publishOne(ctx context.Context, g *gpubsub.Message) error {
	_, err := tp.pub.Publish(ctx, g).Get(ctx)
	if err != nil && g.OrderingKey != "" {
		tp.pub.ResumePublish(g.OrderingKey)
	}
	return err
}

// sendBack publishes msg to the group's topic again, for the group alone, as
// h says.
func (b *broker) sendBack(ctx context.Context, r groupRefs, msg *driver.Message, h handBack) error {
	return b.send(ctx, r.topicPath, []*gpubsub.Message{encodeFor(msg, h)})
}

// ListDeadLetters implements driver.DeadLetters. It reads every dead letter
// of the group (to order them: Pub/Sub does not), oldest first, and hands
// them all back to the dead-letter subscription at once (a nack, which its
// lack of a dead-letter policy makes uncounted). Meanwhile they are leased:
// a concurrent admin call on the same group does not see them.
func (b *broker) ListDeadLetters(ctx context.Context, topic, group string, limit int) ([]*driver.Message, error) {
	r := b.refs(topic, group)
	rms, err := b.pullDeadLetters(ctx, r)
	if err != nil {
		return nil, err
	}
	nackErr := b.nack(ctx, r.deadSub, rms)
	if limit > 0 && len(rms) > limit {
		rms = rms[:limit]
	}
	out := make([]*driver.Message, len(rms))
	for i, rm := range rms {
		out[i] = deadLetterOf(rm, r)
	}
	if nackErr != nil {
		return out, nackErr
	}
	return out, nil
}

// ReplayDeadLetters implements driver.DeadLetters: each dead letter with a
// matching ID is published to the group's topic for this group alone
// (attrTo; every group's subscription filter keeps it from the others),
// without its dead-letter metadata, so that its first delivery has Attempt
// 1; once Pub/Sub accepted it, it is removed from the dead letters. The
// others are handed back.
func (b *broker) ReplayDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error) {
	r := b.refs(topic, group)
	rms, err := b.pullDeadLetters(ctx, r)
	if err != nil {
		return 0, err
	}
	match := driver.NewIDSet(ids)
	var take, keep []*pb.ReceivedMessage
	var gms []*gpubsub.Message
	for _, rm := range rms {
		dl := deadLetterOf(rm, r)
		if !match.Match(dl.ID) {
			keep = append(keep, rm)
			continue
		}
		take = append(take, rm)
		gms = append(gms, encodeFor(driver.Revive(dl), handBack{to: r.to}))
	}
	var sendErr error
	if len(gms) > 0 {
		if err := b.admin.ensureTopic(ctx, r.topicPath); err != nil {
			return 0, errors.Join(err, b.nack(ctx, r.deadSub, rms))
		}
		sendErr = b.send(ctx, r.topicPath, gms)
	}
	var sent []*pb.ReceivedMessage
	var be *driver.BatchError
	switch {
	case sendErr == nil:
		sent = take
	case errors.As(sendErr, &be):
		for i, rm := range take {
			if slices.Contains(be.Failed, i) {
				keep = append(keep, rm)
			} else {
				sent = append(sent, rm)
			}
		}
	default:
		keep = append(keep, take...)
	}
	err = errors.Join(b.ack(ctx, r.deadSub, sent), b.nack(ctx, r.deadSub, keep))
	if sendErr != nil {
		err = errors.Join(fmt.Errorf("gcppubsub: replay dead letters of group %s of %s: %d of %d not published: %w",
			group, topic, len(take)-len(sent), len(take), sendErr), err)
	}
	return len(sent), err
}

// PurgeDeadLetters implements driver.DeadLetters.
func (b *broker) PurgeDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error) {
	r := b.refs(topic, group)
	rms, err := b.pullDeadLetters(ctx, r)
	if err != nil {
		return 0, err
	}
	match := driver.NewIDSet(ids)
	var drop, keep []*pb.ReceivedMessage
	for _, rm := range rms {
		if match.Match(deadLetterOf(rm, r).ID) {
			drop = append(drop, rm)
		} else {
			keep = append(keep, rm)
		}
	}
	err = errors.Join(b.ack(ctx, r.deadSub, drop), b.nack(ctx, r.deadSub, keep))
	if err != nil {
		return 0, err
	}
	return len(drop), nil
}

// pullDeadLetters leases every dead letter of the group and returns them
// oldest first. Pub/Sub's Pull may answer with fewer messages than it
// holds; the listing ends at the first empty answer.
func (b *broker) pullDeadLetters(ctx context.Context, r groupRefs) ([]*pb.ReceivedMessage, error) {
	sc := b.client.SubscriptionAdminClient
	var all []*pb.ReceivedMessage
	for {
		resp, err := sc.Pull(ctx, &pb.PullRequest{Subscription: r.deadSub, MaxMessages: maxAckIDs, ReturnImmediately: true})
		if err != nil {
			if len(all) > 0 {
				err = errors.Join(err, b.nack(context.WithoutCancel(ctx), r.deadSub, all))
			}
			if status.Code(err) == codes.NotFound {
				return nil, b.missingDeadLetters(ctx, r)
			}
			return nil, wrapErr(ctx, err, "read dead letters of group %s of %s (%s)", r.group, r.topic, r.deadSub)
		}
		if len(resp.ReceivedMessages) == 0 {
			break
		}
		all = append(all, resp.ReceivedMessages...)
	}
	slices.SortStableFunc(all, func(x, y *pb.ReceivedMessage) int {
		return x.GetMessage().GetPublishTime().AsTime().Compare(y.GetMessage().GetPublishTime().AsTime())
	})
	return all, nil
}

// missingDeadLetters reports a dead-letter subscription found missing: the
// group does not exist (driver.ErrNotFound), or it lost its dead-letter
// subscription, which is set up again (it holds nothing).
func (b *broker) missingDeadLetters(ctx context.Context, r groupRefs) error {
	_, err := b.client.SubscriptionAdminClient.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: r.subPath})
	switch {
	case status.Code(err) == codes.NotFound:
		return fmt.Errorf("gcppubsub: group %s of topic %s (subscription %s): %w", r.group, r.topic, r.subPath, driver.ErrNotFound)
	case err != nil:
		return wrapErr(ctx, err, "get subscription %s", r.subPath)
	case b.cfg.DisableAutoCreate:
		return fmt.Errorf("gcppubsub: group %s of topic %s has no dead-letter subscription %s: %w", r.group, r.topic, r.deadSub, driver.ErrNotFound)
	}
	if err := b.admin.ensureTopic(ctx, r.deadTopic); err != nil {
		return err
	}
	return b.admin.ensureDeadLetterSub(ctx, r)
}

// deadLetterOf returns the dead letter rm carries. One that Pub/Sub
// forwarded itself (its dead-letter policy, after members kept crashing)
// lacks the portable layer's metadata, which is filled in from Pub/Sub's.
func deadLetterOf(rm *pb.ReceivedMessage, r groupRefs) *driver.Message {
	pm := rm.GetMessage()
	m := decodeParts(pm.GetMessageId(), pm.GetOrderingKey(), pm.GetAttributes(), pm.GetData()).msg
	md := m.Metadata
	if _, ok := md[driver.MetadataDeadLetterReason]; !ok {
		n := md[attrPubSubDeadLetterCount]
		md[driver.MetadataDeadLetterReason] = "gcppubsub: Pub/Sub forwarded the message after " + n + " delivery attempts (members stopped while holding it)"
		md[driver.MetadataAttempts] = n
		if _, err := strconv.Atoi(n); err != nil {
			md[driver.MetadataAttempts] = "0"
		}
		md[driver.MetadataOriginalTopic] = r.topic
		md[driver.MetadataGroup] = r.group
		md[driver.MetadataDeadLetterTime] = pm.GetPublishTime().AsTime().UTC().Format(time.RFC3339Nano)
	}
	return m
}

// ack acknowledges rms on the subscription at path.
func (b *broker) ack(ctx context.Context, path string, rms []*pb.ReceivedMessage) error {
	for ids := range ackIDs(rms) {
		if err := b.client.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: path, AckIds: ids}); err != nil {
			return wrapErr(ctx, err, "acknowledge %d messages on %s", len(ids), path)
		}
	}
	return nil
}

// nack hands rms back to the subscription at path at once.
func (b *broker) nack(ctx context.Context, path string, rms []*pb.ReceivedMessage) error {
	for ids := range ackIDs(rms) {
		if err := b.client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: path, AckIds: ids}); err != nil {
			return wrapErr(ctx, err, "hand back %d messages on %s", len(ids), path)
		}
	}
	return nil
}

// ackIDs yields the ack IDs of rms in requests of at most maxAckIDs.
func ackIDs(rms []*pb.ReceivedMessage) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for chunk := range slices.Chunk(rms, maxAckIDs) {
			ids := make([]string, len(chunk))
			for i, rm := range chunk {
				ids[i] = rm.GetAckId()
			}
			if !yield(ids) {
				return
			}
		}
	}
}
