package nats

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport/transporttest"
)

// conformanceMaxBytes is the size limit the conformance brokers are opened
// with, so that the suite's oversize messages stay small.
const conformanceMaxBytes = 64 << 10

// TestConformance runs the transport conformance suite against the real
// NATS server, in a namespace of its own that is deleted afterwards.
func TestConformance(t *testing.T) {
	raw := testURL(t, "max_message_bytes="+strconv.Itoa(conformanceMaxBytes))
	ns := mustParse(t, raw).Namespace
	transporttest.Run(t, transporttest.Harness{
		NewBroker: func(t *testing.T, opts ...pubsub.BrokerOption) pubsub.Broker {
			return openTest(t, raw, opts...)
		},
		BreakDeadLetters: func(t *testing.T, _, _ string) func() {
			return breakDeadLetters(t, raw, ns)
		},
	}, transporttest.Features{MaxMessageBytes: conformanceMaxBytes})
}

// mustParse returns the Config of raw, with defaults.
func mustParse(t testing.TB, raw string) Config {
	t.Helper()
	u, err := parseURL(mustURL(t, raw))
	require.NoError(t, err)
	u.setDefaults()
	return u
}

// breakDeadLetters makes storing dead letters of namespace ns fail, by
// making its dead-letter stream take another subject, until the function
// it returns restores the stream's subjects. Dead letters stored before
// stay.
func breakDeadLetters(t testing.TB, raw, ns string) func() {
	t.Helper()
	cfg := Config{Namespace: ns}
	cfg.setDefaults()
	b := &broker{cfg: cfg, names: names{ns: ns}}
	good := b.deadLetterStreamConfig()
	broken := good
	broken.Subjects = []string{ns + "_broken"}
	nc, js := rawClient(t, raw)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := js.CreateOrUpdateStream(ctx, broken)
	require.NoError(t, err)
	return func() {
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := js.UpdateStream(ctx, good)
		require.NoError(t, err)
	}
}
