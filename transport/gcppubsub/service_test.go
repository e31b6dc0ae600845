package gcppubsub_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// newServiceBroker opens a broker on the fake service, as on Pub/Sub
// itself, and closes it with t.
func newServiceBroker(t testing.TB, f *fakeService, cfg gcppubsub.Config, opts ...pubsub.BrokerOption) *pubsub.Client {
	t.Helper()
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	b, err := gcppubsub.New(context.Background(), f.config(cfg), append([]pubsub.BrokerOption{pubsub.WithLogger(nil)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}
