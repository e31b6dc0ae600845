package watermillbridge_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// TestWatermillSuiteMemory runs watermill's own Pub/Sub test suite through
// the bridge over the memory broker. Every instance of the suite's
// Publisher and Subscriber uses one broker on a private hub, so its
// messages are kept between instances (Persistent) and everything is freed
// when the broker is closed, after the groups were deleted. The suite runs
// at full size (not ForceShort): about 2 seconds with -race.
func TestWatermillSuiteMemory(t *testing.T) {
	b, err := memory.New(memory.Config{}, pubsub.WithLogger(nil))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	runWatermillSuite(t, suiteHarness{open: func(*testing.T) *pubsub.Client { return b }, admin: b}, suiteFeatures(false))
}
