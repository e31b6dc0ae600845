package gcppubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

const waitFor = 10 * time.Second

// getSub returns the subscription with ID id as the emulator has it.
func getSub(t *testing.T, srv *pstest.Server, id string) (*pb.Subscription, error) {
	t.Helper()
	return srv.GServer.GetSubscription(context.Background(), &pb.GetSubscriptionRequest{Subscription: "projects/" + testProject + "/subscriptions/" + id})
}

// recorder collects handler calls.
type recorder struct {
	mu   sync.Mutex
	got  []*pubsub.Message
	at   []time.Time
	more chan struct{}
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) add(m *pubsub.Message) {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// wait waits for n calls and returns them.
func (r *recorder) wait(t *testing.T, n int) ([]*pubsub.Message, []time.Time) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			defer r.mu.Unlock()
			return append([]*pubsub.Message(nil), r.got...), append([]time.Time(nil), r.at...)
		}
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("timed out waiting for %d handler calls", n)
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func subscribe(t *testing.T, b pubsub.Subscriber, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) *pubsub.Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), topic, group, h, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSubscribeSetsUpSubscription: the group's subscription is created with
// ordering, the ack deadline, no expiry and a dead-letter policy of
// MaxAttempts+1 (at least 5); the dead-letter group exists too; a later
// Subscribe with other options updates the policy.
func TestSubscribeSetsUpSubscription(t *testing.T) {
	srv := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{AckDeadline: 20 * time.Second})
	subscribe(t, b, "orders", "billing", func(context.Context, *pubsub.Message) error { return nil }, pubsub.WithMaxAttempts(3))

	s, err := getSub(t, srv, "orders.billing")
	require.NoError(t, err)
	assert.Equal(t, "projects/switchyard-test/topics/orders", s.GetTopic())
	assert.True(t, s.GetEnableMessageOrdering())
	assert.Equal(t, int32(20), s.GetAckDeadlineSeconds())
	require.NotNil(t, s.GetExpirationPolicy(), "an expiration policy is set")
	assert.Nil(t, s.GetExpirationPolicy().GetTtl(), "without TTL: never expires")
	assert.Equal(t, "projects/switchyard-test/topics/orders.dlq", s.GetDeadLetterPolicy().GetDeadLetterTopic())
	assert.Equal(t, int32(5), s.GetDeadLetterPolicy().GetMaxDeliveryAttempts(), "3+1 raised to Pub/Sub's minimum")

	dlq, err := getSub(t, srv, "orders.dlq.billing")
	require.NoError(t, err, "the dead-letter group keeps dead letters")
	assert.Equal(t, "projects/switchyard-test/topics/orders.dlq", dlq.GetTopic())
	assert.Nil(t, dlq.GetDeadLetterPolicy(), "CreateGroup sets no policy")

	subscribe(t, newBroker(t, gcppubsub.Config{}), "orders", "billing", func(context.Context, *pubsub.Message) error { return nil },
		pubsub.WithMaxAttempts(20), pubsub.WithDeadLetter("graveyard"))
	s, err = getSub(t, srv, "orders.billing")
	require.NoError(t, err)
	assert.Equal(t, "projects/switchyard-test/topics/graveyard", s.GetDeadLetterPolicy().GetDeadLetterTopic())
	assert.Equal(t, int32(21), s.GetDeadLetterPolicy().GetMaxDeliveryAttempts())
	assert.Equal(t, int32(20), s.GetAckDeadlineSeconds(), "the existing subscription is otherwise kept")
}

func TestSubscribeWithoutOrdering(t *testing.T) {
	srv := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{DisableOrdering: true})
	require.NoError(t, b.CreateGroup(context.Background(), "events", "audit"))
	s, err := getSub(t, srv, "events.audit")
	require.NoError(t, err)
	assert.False(t, s.GetEnableMessageOrdering())
}

// TestSubscribeRefusesMaxAttemptsOver100: Pub/Sub counts at most 100
// delivery attempts; the refusal comes before any I/O.
func TestSubscribeRefusesMaxAttemptsOver100(t *testing.T) {
	srv := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	_, err := b.Subscribe(context.Background(), "orders", "billing", func(context.Context, *pubsub.Message) error { return nil }, pubsub.WithMaxAttempts(101))
	require.ErrorIs(t, err, pubsub.ErrInvalidOption)
	assert.Contains(t, err.Error(), "max attempts 101 over Pub/Sub's limit of 100")
	_, err = getSub(t, srv, "orders.billing")
	assert.Equal(t, codes.NotFound, status.Code(err), "nothing created")

	subscribe(t, b, "orders", "billing", func(context.Context, *pubsub.Message) error { return nil }, pubsub.WithMaxAttempts(100))
	s, err := getSub(t, srv, "orders.billing")
	require.NoError(t, err)
	assert.Equal(t, int32(100), s.GetDeadLetterPolicy().GetMaxDeliveryAttempts())
}

// TestSubscribeDetectsSharedSubscriptionID: topic "orders.eu" with group
// "billing" and topic "orders" with group "eu.billing" would share
// "orders.eu.billing".
func TestSubscribeDetectsSharedSubscriptionID(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	subscribe(t, b, "orders.eu", "billing", func(context.Context, *pubsub.Message) error { return nil })
	_, err := b.Subscribe(context.Background(), "orders", "eu.billing", func(context.Context, *pubsub.Message) error { return nil })
	require.ErrorIs(t, err, pubsub.ErrInvalidGroup)
	assert.Contains(t, err.Error(), "subscription projects/switchyard-test/subscriptions/orders.eu.billing belongs to topic projects/switchyard-test/topics/orders.eu, not projects/switchyard-test/topics/orders")
}

// TestMappedNamesRoundTrip: names Pub/Sub cannot take as IDs work, under
// their mapped IDs.
func TestMappedNamesRoundTrip(t *testing.T) {
	srv := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	rec := newRecorder()
	subscribe(t, b, "7d", "g", func(_ context.Context, m *pubsub.Message) error { rec.add(m); return nil })
	require.NoError(t, b.Publish(context.Background(), "7d", &pubsub.Message{ID: "x"}))
	got, _ := rec.wait(t, 1)
	assert.Equal(t, "x", got[0].ID)
	_, err := getSub(t, srv, "sy~7d.g")
	assert.NoError(t, err)
}

// TestRetryStaysLocal: a retried message stays leased by its receiver and
// goes to a handler again after the backoff; Pub/Sub sees one delivery, no
// nack, and one ack.
func TestRetryStaysLocal(t *testing.T) {
	srv := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	rec := newRecorder()
	const backoff = 400 * time.Millisecond
	subscribe(t, b, "flaky", "g", func(_ context.Context, m *pubsub.Message) error {
		rec.add(m)
		if m.Attempt < 3 {
			return errors.New("fails")
		}
		return nil
	}, pubsub.WithBackoff(backoff, backoff))
	require.NoError(t, b.Publish(context.Background(), "flaky", &pubsub.Message{ID: "f"}))
	got, at := rec.wait(t, 3)
	assert.Equal(t, []int{1, 2, 3}, []int{got[0].Attempt, got[1].Attempt, got[2].Attempt})
	for i := 1; i < 3; i++ {
		assert.GreaterOrEqual(t, at[i].Sub(at[i-1]), backoff/2, "attempt %d after the backoff", i+1)
	}

	require.Eventually(t, func() bool { return srv.Messages()[0].Acks == 1 }, waitFor, 10*time.Millisecond, "acked")
	m := srv.Messages()[0]
	assert.Equal(t, 1, m.Deliveries, "retried without a redelivery by Pub/Sub")
	for _, ma := range m.Modacks {
		assert.NotZero(t, ma.AckDeadline, "no nack: %+v", m.Modacks)
	}
	time.Sleep(2 * backoff)
	assert.Equal(t, 3, rec.count())
}

// TestFanOutAttemptsOnEmulator: pstest counts a message's deliveries to all
// subscriptions of its topic together; with several groups on a topic each
// still sees attempts 1, 2, 3 of its own.
func TestFanOutAttemptsOnEmulator(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	recs := map[string]*recorder{}
	for _, g := range []string{"audit", "analytics", "notifier"} {
		rec := newRecorder()
		recs[g] = rec
		subscribe(t, b, "activity", g, func(_ context.Context, m *pubsub.Message) error {
			rec.add(m)
			if g == "analytics" && m.Attempt < 3 {
				return errors.New("fails twice")
			}
			return nil
		}, pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
	}
	require.NoError(t, b.Publish(context.Background(), "activity", &pubsub.Message{ID: "e1"}))
	for g, rec := range recs {
		n := 1
		if g == "analytics" {
			n = 3
		}
		got, _ := rec.wait(t, n)
		for i, m := range got {
			assert.Equal(t, i+1, m.Attempt, "group %s delivery %d", g, i)
		}
	}
}

// TestCloseHandsBackMessageInBackoff: closing a subscription nacks a message
// waiting out its retry delay, so another member gets it at once, with the
// attempt counted by Pub/Sub.
func TestCloseHandsBackMessageInBackoff(t *testing.T) {
	startEmulator(t)
	first := newBroker(t, gcppubsub.Config{})
	failed := make(chan struct{}, 1)
	sub := subscribe(t, first, "jobs", "workers", func(_ context.Context, m *pubsub.Message) error {
		failed <- struct{}{}
		return errors.New("fails")
	}, pubsub.WithBackoff(time.Hour, time.Hour))
	require.NoError(t, first.Publish(context.Background(), "jobs", &pubsub.Message{ID: "j"}))
	select {
	case <-failed:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}
	start := time.Now()
	require.NoError(t, sub.Close())

	rec := newRecorder()
	subscribe(t, newBroker(t, gcppubsub.Config{}), "jobs", "workers", func(_ context.Context, m *pubsub.Message) error { rec.add(m); return nil })
	got, _ := rec.wait(t, 1)
	assert.Equal(t, "j", got[0].ID)
	assert.Equal(t, 2, got[0].Attempt)
	assert.Less(t, time.Since(start), 5*time.Second, "not after the ack deadline or the backoff")
}

// TestForeignMessage: a message from another publisher, without the ID
// attribute, gets Pub/Sub's message ID.
func TestForeignMessage(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	rec := newRecorder()
	subscribe(t, b, "mixed", "g", func(_ context.Context, m *pubsub.Message) error { rec.add(m); return nil })

	raw, err := gpubsub.NewClient(context.Background(), testProject)
	require.NoError(t, err)
	defer raw.Close()
	p := raw.Publisher("mixed")
	defer p.Stop()
	id, err := p.Publish(context.Background(), &gpubsub.Message{Data: []byte("hi"), Attributes: map[string]string{"a": "1"}}).Get(context.Background())
	require.NoError(t, err)

	got, _ := rec.wait(t, 1)
	assert.Equal(t, id, got[0].ID)
	assert.Equal(t, map[string]string{"a": "1"}, got[0].Metadata)
	assert.Equal(t, []byte("hi"), got[0].Payload)
	assert.Equal(t, 1, got[0].Attempt)
}

// TestWithoutAutoCreateCountsAttemptsLocally: on a subscription without a
// dead-letter policy Pub/Sub reports no attempt; the receiver counts.
func TestWithoutAutoCreateCountsAttemptsLocally(t *testing.T) {
	srv := startEmulator(t)
	require.NoError(t, newBroker(t, gcppubsub.Config{}).CreateGroup(context.Background(), "pre", "made"))
	b := newBroker(t, gcppubsub.Config{DisableAutoCreate: true})
	rec := newRecorder()
	subscribe(t, b, "pre", "made", func(_ context.Context, m *pubsub.Message) error {
		rec.add(m)
		if m.Attempt < 3 {
			return fmt.Errorf("attempt %d", m.Attempt)
		}
		return nil
	}, pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
	require.NoError(t, b.Publish(context.Background(), "pre", &pubsub.Message{ID: "p"}))
	got, _ := rec.wait(t, 3)
	assert.Equal(t, []int{1, 2, 3}, []int{got[0].Attempt, got[1].Attempt, got[2].Attempt})

	_, err := getSub(t, srv, "pre.dlq.made")
	assert.Equal(t, codes.NotFound, status.Code(err), "no admin calls: no dead-letter group")
}

// TestSubscribeErrorsNameTheSubscription: a failing admin call names the
// subscription and topic.
func TestSubscribeErrorsNameTheSubscription(t *testing.T) {
	srv := pstest.NewServerWithAddress("127.0.0.1:0", pstest.WithErrorInjection("CreateSubscription", codes.PermissionDenied, "caller lacks pubsub.subscriptions.create"))
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	b := newBroker(t, gcppubsub.Config{})
	_, err := b.Subscribe(context.Background(), "orders", "billing", func(context.Context, *pubsub.Message) error { return nil })
	require.Error(t, err)
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	assert.Equal(t, "gcppubsub: create subscription projects/switchyard-test/subscriptions/orders.billing on topic projects/switchyard-test/topics/orders: rpc error: code = PermissionDenied desc = caller lacks pubsub.subscriptions.create", err.Error())
}
