package watermillbridge_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/gcppubsub"
)

// TestWatermillSuiteGCPPubSub runs watermill's own Pub/Sub test suite
// through the bridge over Google Cloud Pub/Sub: the pstest emulator,
// started here and reached over real gRPC through PUBSUB_EMULATOR_HOST, as
// transport/gcppubsub's own tests do.
//
// Each instance of the suite's Publisher and Subscriber has a broker (a
// gRPC client) of its own, closed when its subtest ends. The suite runs its
// short variants (ForceShort, which watermill offers for slow Pub/Subs):
// pstest streams about 100 messages a second per subscription, so the full
// sizes (10000 messages in TestPublisherClose, 5000 in
// TestConcurrentSubscribe and TestContinueAfterSubscribeClose) would take
// minutes. At the end the groups (subscriptions) the suite created are
// deleted; its topics go with the emulator.
func TestWatermillSuiteGCPPubSub(t *testing.T) {
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	open := func(t *testing.T) *pubsub.Client {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := gcppubsub.New(ctx, gcppubsub.Config{ProjectID: "switchyard-test"}, pubsub.WithLogger(nil))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, b.Close()) })
		return b
	}
	runWatermillSuite(t, suiteHarness{open: open, admin: open(t), maxAttempts: 100}, suiteFeatures(true))
}
