//go:build gcppubsub_pstest

package gcppubsub_test

import (
	"context"
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
