package nats

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

func TestInterestRetentionSafe(t *testing.T) {
	for v, want := range map[string]bool{"2.9.10": false, "2.9.25": false, "2.10.0": true, "2.10.29": true, "2.11.1": true, "3.0.0": true, "weird": true} {
		assert.Equal(t, want, interestRetentionSafe(v), v)
	}
}

// On a limits-retention stream (what the broker creates on NATS Server
// 2.9), sweep purges exactly what every consumer is done with: nothing a
// group has pending or unacknowledged, everything of a topic without
// groups.
func TestSweepPurgesOnlySettledMessages(t *testing.T) {
	raw := testURL(t, "")
	cfg := mustParse(t, raw)
	ctx := context.Background()
	b, err := open(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer b.Close()
	b.retention = jetstream.LimitsPolicy
	send := func(topic string, n int) {
		msgs := make([]*driver.Message, n)
		for i := range msgs {
			msgs[i] = &driver.Message{ID: topic + "-" + string(rune('a'+i))}
		}
		require.NoError(t, b.SendBatch(ctx, topic, msgs))
	}
	stream := func(topic string) jetstream.Stream {
		s, err := b.js.Stream(ctx, b.names.stream(topic))
		require.NoError(t, err)
		require.Equal(t, jetstream.LimitsPolicy, s.CachedInfo().Config.Retention)
		return s
	}

	// No group: nothing is needed.
	send("nogroup", 3)
	n, err := b.sweep(ctx, b.names.stream("nogroup"))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Zero(t, stream("nogroup").CachedInfo().State.Msgs)

	// A group that acknowledged 6 of 10 and holds 2 more unacknowledged.
	g, err := b.ensureGroup(ctx, "t", "g")
	require.NoError(t, err)
	send("t", 10)
	batch, err := g.main.Fetch(8, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	require.Len(t, got, 8)
	for _, m := range got[:6] {
		require.NoError(t, m.DoubleAck(ctx))
	}
	n, err = b.sweep(ctx, b.names.stream("t"))
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	assert.Equal(t, uint64(4), stream("t").CachedInfo().State.Msgs)

	for _, m := range got[6:] {
		require.NoError(t, m.DoubleAck(ctx))
	}
	n, err = b.sweep(ctx, b.names.stream("t"))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the two acknowledged now; two more are pending (not delivered yet)")
	assert.Equal(t, uint64(2), stream("t").CachedInfo().State.Msgs)
	batch, err = g.main.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx))
	}
	n, err = b.sweep(ctx, b.names.stream("t"))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Zero(t, stream("t").CachedInfo().State.Msgs)
}

func TestRedeliverySafe(t *testing.T) {
	for v, want := range map[string]bool{"2.9.10": false, "2.9.25": false, "2.10.0": false, "2.10.15": false, "2.10.16": true, "2.10.29": true, "2.11.0-RC.1": true, "2.11.1": true, "3.0.0": true, "weird": true} {
		assert.Equal(t, want, redeliverySafe(v), v)
	}
}
