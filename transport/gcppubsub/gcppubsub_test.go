package gcppubsub_test

import (
	"context"
	"testing"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
	"github.com/switchyard-go/switchyard/transport/transporttest"
)

const (
	testProject  = "switchyard-test"
	testMaxBytes = 64 << 10
)

// startEmulator starts a pstest server for t and points PUBSUB_EMULATOR_HOST
// at it, so that brokers reach it over a real gRPC connection as they would
// reach a user's emulator.
func startEmulator(t testing.TB) *pstest.Server {
	t.Helper()
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	return srv
}

// newBroker opens a broker on the emulator with cfg (ProjectID defaulted)
// and closes it with t.
func newBroker(t testing.TB, cfg gcppubsub.Config) *gcppubsub.Broker {
	t.Helper()
	if cfg.ProjectID == "" {
		cfg.ProjectID = testProject
	}
	b, err := gcppubsub.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	startEmulator(t)
	transporttest.Run(t, transporttest.Harness{
		NewBroker: func(t *testing.T) pubsub.Broker {
			return newBroker(t, gcppubsub.Config{MaxMessageBytes: testMaxBytes})
		},
	}, transporttest.Features{
		// pstest delivers a key's next message only after the previous one
		// was acked, and the subscriptions are created with ordering.
		OrderingByKey:   true,
		MaxMessageBytes: testMaxBytes,
	})
}
