package gcppubsub_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// fakeService serves Pub/Sub's gRPC API from a pstest server, doing itself
// three things the Pub/Sub service does and pstest does not, so that tests
// see the production behaviour of the transport (no PUBSUB_EMULATOR_HOST):
//
//   - server-side flow control: a StreamingPull stream is sent at most the
//     max_outstanding_messages of its first request, counting every message
//     sent on it and not yet acked, nacked (ack deadline 0) or expired
//     (pstest pushes without limit);
//   - retry policies: a nacked message of a subscription with one is
//     delivered again after minimum_backoff × 2^(deliveries-1), at most
//     maximum_backoff (Pub/Sub documents an exponential backoff between the
//     two; pstest redelivers at once);
//   - delivery counts per subscription, with dead-letter policies (pstest
//     counts a message's deliveries to all subscriptions of its topic
//     together, and forwards on that count).
//
// Publishing, filters, ordering keys, acks and leases are pstest's: the fake
// pulls from it with unary Pull, which takes a maximum.
type fakeService struct {
	backend *pstest.Server
	gs      *pstest.GServer
	Addr    string

	mu             sync.Mutex
	subs           map[string]*fakeSub   // policies and counts, by subscription path
	leases         map[string]*fakeLease // by ack ID
	maxOutstanding map[string][]int64    // per subscription, each stream's max_outstanding_messages
	calls          map[string]int        // RPCs served, by method name
}

type fakeSub struct {
	deadLetter *pb.DeadLetterPolicy
	retry      *pb.RetryPolicy
	ordered    bool
	counts     map[string]int // deliveries by Pub/Sub message ID
}

type fakeLease struct {
	sub      string
	msgID    string
	stream   *fakeStream
	deadline time.Time
}

type fakeStream struct {
	outstanding map[string]bool // ack IDs sent and not acked, nacked or expired
	wake        chan struct{}
}

// startFake starts a fakeService for t, with pstest reactors opts on its
// backend.
func startFake(t testing.TB, opts ...pstest.ServerReactorOption) *fakeService {
	t.Helper()
	f := &fakeService{
		backend: pstest.NewServerWithAddress("127.0.0.1:0", opts...),
		subs:    map[string]*fakeSub{}, leases: map[string]*fakeLease{},
		maxOutstanding: map[string][]int64{}, calls: map[string]int{},
	}
	f.gs = &f.backend.GServer
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.Addr = l.Addr().String()
	count := func(method string) {
		f.mu.Lock()
		f.calls[method]++
		f.mu.Unlock()
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			count(info.FullMethod)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			count(info.FullMethod)
			return h(s, ss)
		}),
	)
	pb.RegisterPublisherServer(srv, f.gs)
	pb.RegisterSubscriberServer(srv, &fakeSubscriber{GServer: f.gs, f: f})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		_ = f.backend.Close()
	})
	return f
}

// config returns cfg connected to the fake as to Pub/Sub's service (not as
// an emulator: PUBSUB_EMULATOR_HOST must be empty).
func (f *fakeService) config(cfg gcppubsub.Config) gcppubsub.Config {
	if cfg.ProjectID == "" {
		cfg.ProjectID = testProject
	}
	cfg.ClientOptions = append(cfg.ClientOptions,
		option.WithEndpoint(f.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled(),
	)
	return cfg
}

// called returns how many times the RPC method (such as
// "ListTopicSubscriptions") was served.
func (f *fakeService) called(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls["/google.pubsub.v1.Subscriber/"+method] + f.calls["/google.pubsub.v1.Publisher/"+method]
}

// streamLimits returns the max_outstanding_messages of every stream opened
// on subscription ID id.
func (f *fakeService) streamLimits(id string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.maxOutstanding[subPath(id)]...)
}

func subPath(id string) string { return "projects/" + testProject + "/subscriptions/" + id }

// fakeSubscriber is pstest's Subscriber service with the fake's additions.
type fakeSubscriber struct {
	*pstest.GServer
	f *fakeService
}

// CreateSubscription keeps the policies, which pstest does not get.
func (s *fakeSubscriber) CreateSubscription(ctx context.Context, req *pb.Subscription) (*pb.Subscription, error) {
	inner := proto.Clone(req).(*pb.Subscription)
	inner.DeadLetterPolicy, inner.RetryPolicy = nil, nil
	got, err := s.GServer.CreateSubscription(ctx, inner)
	if err != nil {
		return nil, err
	}
	s.f.mu.Lock()
	s.f.subs[req.GetName()] = &fakeSub{deadLetter: req.GetDeadLetterPolicy(), retry: req.GetRetryPolicy(), ordered: req.GetEnableMessageOrdering(), counts: map[string]int{}}
	s.f.mu.Unlock()
	return s.f.withPolicies(got), nil
}

func (s *fakeSubscriber) GetSubscription(ctx context.Context, req *pb.GetSubscriptionRequest) (*pb.Subscription, error) {
	got, err := s.GServer.GetSubscription(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.f.withPolicies(got), nil
}

func (s *fakeSubscriber) UpdateSubscription(ctx context.Context, req *pb.UpdateSubscriptionRequest) (*pb.Subscription, error) {
	var rest []string
	s.f.mu.Lock()
	fs := s.f.subs[req.GetSubscription().GetName()]
	s.f.mu.Unlock()
	if fs == nil {
		return nil, status.Errorf(codes.NotFound, "subscription %s", req.GetSubscription().GetName())
	}
	for _, p := range req.GetUpdateMask().GetPaths() {
		s.f.mu.Lock()
		switch p {
		case "dead_letter_policy":
			fs.deadLetter = req.GetSubscription().GetDeadLetterPolicy()
		case "retry_policy":
			fs.retry = req.GetSubscription().GetRetryPolicy()
		default:
			rest = append(rest, p)
		}
		s.f.mu.Unlock()
	}
	if len(rest) > 0 {
		inner := proto.Clone(req).(*pb.UpdateSubscriptionRequest)
		inner.UpdateMask.Paths = rest
		if _, err := s.GServer.UpdateSubscription(ctx, inner); err != nil {
			return nil, err
		}
	}
	return s.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: req.GetSubscription().GetName()})
}

func (s *fakeSubscriber) DeleteSubscription(ctx context.Context, req *pb.DeleteSubscriptionRequest) (*emptypb.Empty, error) {
	s.f.mu.Lock()
	delete(s.f.subs, req.GetSubscription())
	s.f.mu.Unlock()
	return s.GServer.DeleteSubscription(ctx, req)
}

func (f *fakeService) withPolicies(got *pb.Subscription) *pb.Subscription {
	out := proto.Clone(got).(*pb.Subscription)
	f.mu.Lock()
	defer f.mu.Unlock()
	if fs := f.subs[out.GetName()]; fs != nil {
		out.DeadLetterPolicy, out.RetryPolicy = fs.deadLetter, fs.retry
	}
	return out
}

func (s *fakeSubscriber) Acknowledge(ctx context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	s.f.settle(req.GetAckIds(), -1)
	return s.GServer.Acknowledge(ctx, req)
}

func (s *fakeSubscriber) ModifyAckDeadline(ctx context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	if req.GetAckDeadlineSeconds() > 0 {
		s.f.settle(req.GetAckIds(), int(req.GetAckDeadlineSeconds()))
		return s.GServer.ModifyAckDeadline(ctx, req)
	}
	for _, id := range req.GetAckIds() {
		s.f.nack(ctx, req.GetSubscription(), id)
	}
	return &emptypb.Empty{}, nil
}

// settle ends the leases of ackIDs (seconds < 0: acked) or extends them by
// seconds.
func (f *fakeService) settle(ackIDs []string, seconds int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ackIDs {
		l := f.leases[id]
		if l == nil {
			continue
		}
		if seconds > 0 {
			l.deadline = time.Now().Add(time.Duration(seconds) * time.Second)
			continue
		}
		f.dropLocked(id, l)
	}
}

func (f *fakeService) dropLocked(id string, l *fakeLease) {
	delete(f.leases, id)
	if l.stream != nil {
		delete(l.stream.outstanding, id)
		select {
		case l.stream.wake <- struct{}{}:
		default:
		}
	}
}

// nack ends the lease of ackID and has pstest deliver the message again:
// at once, or after the retry policy's backoff (meanwhile pstest keeps it
// leased).
func (f *fakeService) nack(ctx context.Context, sub, ackID string) {
	f.mu.Lock()
	var delay time.Duration
	if l := f.leases[ackID]; l != nil {
		if fs := f.subs[l.sub]; fs != nil && fs.retry != nil {
			delay = backoff(fs.retry, fs.counts[l.msgID])
		}
		f.dropLocked(ackID, l)
	}
	f.mu.Unlock()
	modack := func(secs int32) {
		_, _ = f.gs.ModifyAckDeadline(context.WithoutCancel(ctx), &pb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: []string{ackID}, AckDeadlineSeconds: secs})
	}
	if delay <= 0 {
		modack(0)
		return
	}
	modack(int32(delay/time.Second) + 2)
	time.AfterFunc(delay, func() { modack(0) })
}

// backoff is the retry policy's delay after the given number of deliveries.
func backoff(p *pb.RetryPolicy, deliveries int) time.Duration {
	lo, hi := p.GetMinimumBackoff().AsDuration(), p.GetMaximumBackoff().AsDuration()
	d := lo
	for i := 1; i < deliveries && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// StreamingPull serves a stream from pstest's unary Pull, never sending more
// than the stream's max_outstanding_messages at once.
func (s *fakeSubscriber) StreamingPull(stream pb.Subscriber_StreamingPullServer) error {
	f := s.f
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	sub := first.GetSubscription()
	ctx := stream.Context()
	if _, err := s.GServer.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: sub}); err != nil {
		return err
	}
	limit := first.GetMaxOutstandingMessages()
	st := &fakeStream{outstanding: map[string]bool{}, wake: make(chan struct{}, 1)}
	f.mu.Lock()
	f.maxOutstanding[sub] = append(f.maxOutstanding[sub], limit)
	f.mu.Unlock()

	var sendMu sync.Mutex
	send := func(r *pb.StreamingPullResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(r)
	}
	errc := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			if len(req.GetAckIds()) == 0 && len(req.GetModifyDeadlineAckIds()) == 0 {
				_ = send(&pb.StreamingPullResponse{}) // keep-alive
				continue
			}
			_, _ = s.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: req.GetAckIds()})
			for i, id := range req.GetModifyDeadlineAckIds() {
				_, _ = s.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: []string{id}, AckDeadlineSeconds: req.GetModifyDeadlineSeconds()[i]})
			}
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-tick.C:
		case <-st.wake:
		}
		room := f.room(st, limit)
		if room <= 0 {
			continue
		}
		resp, err := s.GServer.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: int32(room), ReturnImmediately: true})
		if err != nil {
			return err
		}
		msgs, ordered := f.deliver(ctx, sub, st, resp.GetReceivedMessages())
		if len(msgs) == 0 {
			continue
		}
		props := &pb.StreamingPullResponse_SubscriptionProperties{MessageOrderingEnabled: ordered}
		if err := send(&pb.StreamingPullResponse{ReceivedMessages: msgs, SubscriptionProperties: props}); err != nil {
			return err
		}
	}
}

// room expires the stream's lapsed leases and returns how many messages it
// may be sent now.
func (f *fakeService) room(st *fakeStream, limit int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for id := range st.outstanding {
		if l := f.leases[id]; l == nil || now.After(l.deadline) {
			delete(st.outstanding, id)
			delete(f.leases, id)
		}
	}
	if limit <= 0 {
		return 1000
	}
	return int(limit) - len(st.outstanding)
}

// deliver counts each pulled message for sub, forwards those past the
// dead-letter policy to its topic, and leases the others to the stream.
func (f *fakeService) deliver(ctx context.Context, sub string, st *fakeStream, rms []*pb.ReceivedMessage) (out []*pb.ReceivedMessage, ordered bool) {
	type forward struct {
		ackID, topic string
		msg          *pb.PubsubMessage
	}
	var fwd []forward
	f.mu.Lock()
	fs := f.subs[sub]
	if fs == nil {
		fs = &fakeSub{counts: map[string]int{}}
		f.subs[sub] = fs
	}
	ordered = fs.ordered
	ackDeadline := 10 * time.Second
	for _, rm := range rms {
		rm = proto.Clone(rm).(*pb.ReceivedMessage)
		id := rm.GetMessage().GetMessageId()
		if dl := fs.deadLetter; dl != nil && fs.counts[id] >= int(dl.GetMaxDeliveryAttempts()) {
			m := proto.Clone(rm.GetMessage()).(*pb.PubsubMessage)
			if m.Attributes == nil {
				m.Attributes = map[string]string{}
			}
			m.Attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = strconv.Itoa(fs.counts[id])
			m.Attributes["CloudPubSubDeadLetterSourceSubscription"] = sub
			m.MessageId, m.PublishTime = "", nil
			fwd = append(fwd, forward{rm.GetAckId(), dl.GetDeadLetterTopic(), m})
			continue
		}
		fs.counts[id]++
		rm.DeliveryAttempt = 0
		if fs.deadLetter != nil {
			rm.DeliveryAttempt = int32(fs.counts[id])
		}
		f.leases[rm.GetAckId()] = &fakeLease{sub: sub, msgID: id, stream: st, deadline: time.Now().Add(ackDeadline)}
		st.outstanding[rm.GetAckId()] = true
		out = append(out, rm)
	}
	f.mu.Unlock()
	for _, fw := range fwd {
		_, _ = f.gs.Publish(ctx, &pb.PublishRequest{Topic: fw.topic, Messages: []*pb.PubsubMessage{fw.msg}})
		_, _ = f.gs.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: []string{fw.ackID}})
	}
	return out, ordered
}
