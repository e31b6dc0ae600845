package gcppubsub_test

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

func TestPing(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	require.NoError(t, b.Ping(context.Background()))
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Ping(context.Background()), pubsub.ErrClosed)
}

func TestPingAnswers(t *testing.T) {
	for _, tc := range []struct {
		code  codes.Code
		ready bool
	}{
		{codes.PermissionDenied, true}, // a publish-only identity
		{codes.Unauthenticated, false},
		{codes.Internal, false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			startEmulator(t, pstest.WithErrorInjection("GetTopic", tc.code, "injected"))
			err := newBroker(t, gcppubsub.Config{}).Ping(context.Background())
			if tc.ready {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.code, status.Code(err))
			assert.Contains(t, err.Error(), "gcppubsub: ping Pub/Sub for project switchyard-test: ")
		})
	}
}

func TestPingUnreachable(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
	b := newBroker(t, gcppubsub.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	assert.Equal(t, context.DeadlineExceeded, b.Ping(ctx))
}

// TestNewWithoutEmulatorOrCredentials: outside Google Cloud, without
// PUBSUB_EMULATOR_HOST or Application Default Credentials, New fails naming
// the project.
func TestNewWithoutEmulatorOrCredentials(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/absent.json")
	_, err := gcppubsub.New(context.Background(), gcppubsub.Config{ProjectID: "some-project"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gcppubsub: client for project some-project: ")
}

// TestOpenURL: the URL's parameters reach the broker; options are the
// portable layer's.
func TestOpenURL(t *testing.T) {
	e := startEmulator(t)
	u, err := url.Parse("gcppubsub://" + testProject + "?ack_deadline=30s&ordering=false")
	require.NoError(t, err)
	b, err := gcppubsub.OpenURL(context.Background(), u, pubsub.WithLogger(nil))
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateGroup(context.Background(), "orders", "billing"))
	s := getSub(t, e, gcppubsub.GroupID("orders", "billing"))
	assert.Equal(t, int32(30), s.GetAckDeadlineSeconds())
	assert.False(t, s.GetEnableMessageOrdering())

	_, err = gcppubsub.OpenURL(context.Background(), u, pubsub.WithConcurrency(0))
	assert.ErrorIs(t, err, pubsub.ErrInvalidOption)
}

// TestAsClient: As gives the v2 client the broker uses.
func TestAsClient(t *testing.T) {
	startEmulator(t)
	b := newBroker(t, gcppubsub.Config{})
	var c *gpubsub.Client
	require.True(t, b.As(&c))
	require.NotNil(t, c)
	assert.Equal(t, testProject, c.Project())
	var other *int
	assert.False(t, b.As(&other))
}

// TestEmulatorRestart: after the emulator restarts empty on the same port,
// Publish creates the topic again and the running Subscription its group
// (subscription, dead-letter topic and subscription), without an
// application restart.
func TestEmulatorRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	srv := pstest.NewServerWithAddress(addr)
	t.Setenv("PUBSUB_EMULATOR_HOST", addr)
	b := newBroker(t, gcppubsub.Config{})
	ctx := context.Background()

	rec := newRecorder()
	subscribe(t, b, "orders", "billing", rec.handler(nil))
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "before"}))
	rec.wait(t, 1)

	require.NoError(t, srv.Close())
	srv = pstest.NewServerWithAddress(addr)
	t.Cleanup(func() { _ = srv.Close() })
	e := &emulator{Server: srv}

	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, b.Publish(pctx, "orders", &pubsub.Message{ID: "lost"}), "the topic is created again")
	require.Eventually(t, func() bool {
		_, err1 := e.GServer.GetSubscription(ctx, subReq(gcppubsub.GroupID("orders", "billing")))
		_, err2 := e.GServer.GetSubscription(ctx, subReq(gcppubsub.DeadLetterID("orders", "billing")))
		return err1 == nil && err2 == nil
	}, 30*time.Second, 50*time.Millisecond, "the subscription and its dead letters are set up again")
	require.NoError(t, b.Publish(pctx, "orders", &pubsub.Message{ID: "after"}))
	require.Eventually(t, func() bool {
		got := rec.snapshot()
		return got[len(got)-1].ID == "after"
	}, waitFor, 20*time.Millisecond, "the message published after the restart is delivered")
}
