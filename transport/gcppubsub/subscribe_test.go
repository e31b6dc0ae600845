package gcppubsub_test

import (
	"context"
	"errors"
	"fmt"
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

// TestSubscribeSetsUpGroup: on Pub/Sub, the group's subscription
// "<topic>+<group>" is created with the group's filter, ordering, the ack
// deadline, no expiry, a dead-letter policy of MaxAttempts+1 (at least 5) to
// the group's own dead-letter topic and a retry policy of the
// subscription's backoff; the dead-letter subscription keeps the dead
// letters for the retention; a later Subscribe with other options updates
// the policies.
func TestSubscribeSetsUpGroup(t *testing.T) {
	f := startFake(t)
	b := newServiceBroker(t, f, gcppubsub.Config{AckDeadline: 20 * time.Second, DeadLetterRetention: time.Hour})
	subscribe(t, b, "orders", "billing", func(context.Context, *pubsub.Message) error { return nil },
		pubsub.WithMaxAttempts(3), pubsub.WithBackoff(time.Second, time.Minute))
	get := func(id string) *pb.Subscription {
		s, err := f.gs.GetSubscription(context.Background(), subReq(id))
		require.NoError(t, err)
		return f.withPolicies(s)
	}

	s := get("orders+billing")
	assert.Equal(t, "projects/switchyard-test/topics/orders", s.GetTopic())
	assert.Equal(t, `NOT attributes:switchyard-to OR attributes.switchyard-to = "billing"`, s.GetFilter())
	assert.True(t, s.GetEnableMessageOrdering())
	assert.Equal(t, int32(20), s.GetAckDeadlineSeconds())
	require.NotNil(t, s.GetExpirationPolicy(), "an expiration policy is set")
	assert.Nil(t, s.GetExpirationPolicy().GetTtl(), "without TTL: never expires")
	assert.Equal(t, "projects/switchyard-test/topics/orders+billing+dl", s.GetDeadLetterPolicy().GetDeadLetterTopic())
	assert.Equal(t, int32(5), s.GetDeadLetterPolicy().GetMaxDeliveryAttempts(), "3+1 raised to Pub/Sub's minimum")
	assert.Equal(t, time.Second, s.GetRetryPolicy().GetMinimumBackoff().AsDuration())
	assert.Equal(t, time.Minute, s.GetRetryPolicy().GetMaximumBackoff().AsDuration())

	dl := get("orders+billing+dl")
	assert.Equal(t, "projects/switchyard-test/topics/orders+billing+dl", dl.GetTopic())
	assert.Equal(t, time.Hour, dl.GetMessageRetentionDuration().AsDuration())
	assert.Nil(t, dl.GetDeadLetterPolicy())
	assert.Nil(t, dl.GetRetryPolicy())
	assert.Empty(t, dl.GetFilter())

	subscribe(t, newServiceBroker(t, f, gcppubsub.Config{}), "orders", "billing", func(context.Context, *pubsub.Message) error { return nil },
		pubsub.WithMaxAttempts(20))
	s = get("orders+billing")
	assert.Equal(t, int32(21), s.GetDeadLetterPolicy().GetMaxDeliveryAttempts())
	assert.Equal(t, pubsub.DefaultBackoffInitial, s.GetRetryPolicy().GetMinimumBackoff().AsDuration())
	assert.Equal(t, pubsub.DefaultBackoffMax, s.GetRetryPolicy().GetMaximumBackoff().AsDuration())
	assert.Equal(t, int32(20), s.GetAckDeadlineSeconds(), "the existing subscription is otherwise kept")
}

func TestSubscribeWithoutOrdering(t *testing.T) {
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{DisableOrdering: true})
	require.NoError(t, b.CreateGroup(context.Background(), "events", "audit"))
	assert.False(t, getSub(t, e, "events+audit").GetEnableMessageOrdering())
}

// TestSubscribeRefusesMaxAttemptsOver100: Pub/Sub counts at most 100
// delivery attempts; the refusal comes before any I/O.
func TestSubscribeRefusesMaxAttemptsOver100(t *testing.T) {
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	_, err := b.Subscribe(context.Background(), "orders", "billing", func(context.Context, *pubsub.Message) error { return nil }, pubsub.WithMaxAttempts(101))
	require.ErrorIs(t, err, pubsub.ErrInvalidOption)
	assert.Contains(t, err.Error(), "max attempts 101 over Pub/Sub's limit of 100")
	_, err = e.GServer.GetSubscription(context.Background(), subReq("orders+billing"))
	assert.Equal(t, codes.NotFound, status.Code(err), "nothing created")
	subscribe(t, b, "orders", "billing", func(context.Context, *pubsub.Message) error { return nil }, pubsub.WithMaxAttempts(100))
}

// TestInjectiveNames: topic "orders.eu" with group "billing" and topic
// "orders" with group "eu.billing", which shared "orders.eu.billing" before,
// are two groups, each with its own messages and dead letters.
func TestInjectiveNames(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	ctx := context.Background()
	eu, plain := newRecorder(), newRecorder()
	subscribe(t, b, "orders.eu", "billing", eu.handler(func(*pubsub.Message) error { return pubsub.Permanent(errors.New("eu fails")) }))
	subscribe(t, b, "orders", "eu.billing", plain.handler(nil))
	require.NoError(t, b.Publish(ctx, "orders.eu", &pubsub.Message{ID: "to-orders.eu"}))
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "to-orders"}))
	got, _ := eu.wait(t, 1)
	assert.Equal(t, "to-orders.eu", got[0].ID)
	got, _ = plain.wait(t, 1)
	assert.Equal(t, "to-orders", got[0].ID)
	require.Eventually(t, func() bool {
		dls, err := b.ListDeadLetters(ctx, "orders.eu", "billing", 0)
		return err == nil && len(dls) == 1
	}, waitFor, 20*time.Millisecond)
	dls, err := b.ListDeadLetters(ctx, "orders", "eu.billing", 0)
	require.NoError(t, err)
	assert.Empty(t, dls)
	assert.Equal(t, 1, eu.count())
	assert.Equal(t, 1, plain.count())
}

// TestMappedNamesRoundTrip: names Pub/Sub cannot take as IDs work, under
// their mapped IDs.
func TestMappedNamesRoundTrip(t *testing.T) {
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	rec := newRecorder()
	subscribe(t, b, "7d", "g", rec.handler(nil))
	require.NoError(t, b.Publish(context.Background(), "7d", &pubsub.Message{ID: "x"}))
	got, _ := rec.wait(t, 1)
	assert.Equal(t, "x", got[0].ID)
	getSub(t, e, "sy~7d+g")
	getSub(t, e, "sy~7d+g+dl")
}

// TestRetryStaysLocalOnEmulator: emulators apply no retry policy, so there
// a retried message stays leased by its receiver and goes to a handler again
// after the backoff; the emulator sees one delivery, no nack, and one ack.
func TestRetryStaysLocalOnEmulator(t *testing.T) {
	e := startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	rec := newRecorder()
	const backoff = 400 * time.Millisecond
	subscribe(t, b, "flaky", "g", rec.handler(func(m *pubsub.Message) error {
		if m.Attempt < 3 {
			return errors.New("fails")
		}
		return nil
	}), pubsub.WithBackoff(backoff, backoff))
	require.NoError(t, b.Publish(context.Background(), "flaky", &pubsub.Message{ID: "f"}))
	got, at := rec.wait(t, 3)
	assert.Equal(t, []int{1, 2, 3}, attempts(got))
	for i := 1; i < 3; i++ {
		assert.GreaterOrEqual(t, at[i].Sub(at[i-1]), backoff/2, "attempt %d after the backoff", i+1)
	}

	require.Eventually(t, func() bool { return e.Messages()[0].Acks == 1 }, waitFor, 10*time.Millisecond, "acked")
	m := e.Messages()[0]
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
		subscribe(t, b, "activity", g, rec.handler(func(m *pubsub.Message) error {
			if g == "analytics" && m.Attempt < 3 {
				return errors.New("fails twice")
			}
			return nil
		}), pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
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

// TestCloseKeepsBackoffSchedule: closing a subscription hands a message
// waiting out its retry backoff in the member (emulators apply no retry
// policy) back with the rest of its backoff and its next Attempt: Close
// does not wait for it, and the next member, in another process, gets it
// when the backoff ends, not at once.
func TestCloseKeepsBackoffSchedule(t *testing.T) {
	startEmulator(t)
	first := newBroker(t, gcppubsub.Config{})
	failed := make(chan time.Time, 1)
	const backoff = 1500 * time.Millisecond
	sub := subscribe(t, first, "jobs", "workers", func(_ context.Context, m *pubsub.Message) error {
		failed <- time.Now()
		return errors.New("fails")
	}, pubsub.WithBackoff(backoff, backoff))
	require.NoError(t, first.Publish(context.Background(), "jobs", &pubsub.Message{ID: "j"}))
	var failedAt time.Time
	select {
	case failedAt = <-failed:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}
	start := time.Now()
	require.NoError(t, sub.Close())
	assert.Less(t, time.Since(start), time.Second, "Close does not wait out the backoff")

	rec := newRecorder()
	subscribe(t, newBroker(t, gcppubsub.Config{}), "jobs", "workers", rec.handler(nil))
	got, at := rec.wait(t, 1)
	assert.Equal(t, "j", got[0].ID)
	assert.Equal(t, 2, got[0].Attempt)
	assert.GreaterOrEqual(t, at[0].Sub(failedAt), backoff/2, "not before its backoff (at least half the nominal delay, with jitter)")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, 1, rec.count(), "once")
}

// TestForeignMessage: a message from another publisher, without the ID
// attribute, gets Pub/Sub's message ID.
func TestForeignMessage(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	rec := newRecorder()
	subscribe(t, b, "mixed", "g", rec.handler(nil))

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

// TestWithoutAutoCreate: with DisableAutoCreate the broker creates nothing:
// a group made beforehand works, and a missing one is an error naming its
// subscription.
func TestWithoutAutoCreate(t *testing.T) {
	e := startEmulator(t)
	require.NoError(t, newBroker(t, gcppubsub.Config{}).CreateGroup(context.Background(), "pre", "made"))
	b := newBroker(t, gcppubsub.Config{DisableAutoCreate: true})
	rec := newRecorder()
	subscribe(t, b, "pre", "made", rec.handler(func(m *pubsub.Message) error {
		if m.Attempt < 3 {
			return fmt.Errorf("attempt %d", m.Attempt)
		}
		return nil
	}), pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
	require.NoError(t, b.Publish(context.Background(), "pre", &pubsub.Message{ID: "p"}))
	got, _ := rec.wait(t, 3)
	assert.Equal(t, []int{1, 2, 3}, attempts(got))

	_, err := b.Subscribe(context.Background(), "pre", "absent", rec.handler(nil))
	require.Error(t, err)
	assert.Equal(t, codes.NotFound, status.Code(err))
	assert.Contains(t, err.Error(), "gcppubsub: get subscription projects/switchyard-test/subscriptions/pre+absent: ")
	_, err = e.GServer.GetSubscription(context.Background(), subReq("pre+absent"))
	assert.Equal(t, codes.NotFound, status.Code(err), "not created")
}

// TestSubscribeErrorsNameTheSubscription: a failing admin call names the
// subscription and topic.
func TestSubscribeErrorsNameTheSubscription(t *testing.T) {
	startEmulator(t, pstest.WithErrorInjection("CreateSubscription", codes.PermissionDenied, "caller lacks pubsub.subscriptions.create"))
	b := newBroker(t, gcppubsub.Config{})
	_, err := b.Subscribe(context.Background(), "orders", "billing", func(context.Context, *pubsub.Message) error { return nil })
	require.Error(t, err)
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	assert.Equal(t, "gcppubsub: create subscription projects/switchyard-test/subscriptions/orders+billing on topic projects/switchyard-test/topics/orders: rpc error: code = PermissionDenied desc = caller lacks pubsub.subscriptions.create", err.Error())
}
