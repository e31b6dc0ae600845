package gcppubsub_test

import (
	"context"
	"net"
	"testing"
	"time"

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
			srv := pstest.NewServerWithAddress("127.0.0.1:0", pstest.WithErrorInjection("GetTopic", tc.code, "injected"))
			t.Cleanup(func() { _ = srv.Close() })
			t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
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

// TestEmulatorRestart: after the emulator restarts empty on the same port,
// Publish creates the topic again and the running Subscription its
// subscription (and dead-letter group), without an application restart.
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
	subscribe(t, b, "orders", "billing", func(_ context.Context, m *pubsub.Message) error { rec.add(m); return nil })
	require.NoError(t, b.Publish(ctx, "orders", &pubsub.Message{ID: "before"}))
	rec.wait(t, 1)

	require.NoError(t, srv.Close())
	srv = pstest.NewServerWithAddress(addr)
	t.Cleanup(func() { _ = srv.Close() })

	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, b.Publish(pctx, "orders", &pubsub.Message{ID: "lost"}), "the topic is created again")
	require.Eventually(t, func() bool {
		_, err1 := getSub(t, srv, "orders.billing")
		_, err2 := getSub(t, srv, "orders.dlq.billing")
		return err1 == nil && err2 == nil
	}, 30*time.Second, 50*time.Millisecond, "the subscription and its dead-letter group are set up again")
	require.NoError(t, b.Publish(pctx, "orders", &pubsub.Message{ID: "after"}))
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.got[len(rec.got)-1].ID == "after"
	}, waitFor, 20*time.Millisecond, "the message published after the restart is delivered")
}
