package nats

import (
	"context"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// A message published with a plain core NATS publish to the documented
// subject reaches every group; one without Nats-Msg-Id gets its stream
// position as ID, the same on every delivery.
func TestInteropCorePublishReachesGroups(t *testing.T) {
	raw := testURL(t, "")
	ns := mustParse(t, raw).Namespace
	b := openTest(t, raw)
	ctx := context.Background()
	got := map[string]chan *pubsub.Message{"billing": make(chan *pubsub.Message, 4), "audit": make(chan *pubsub.Message, 4)}
	for g, ch := range got {
		_, err := b.Subscribe(ctx, "orders.created", g, func(_ context.Context, m *pubsub.Message) error {
			ch <- m
			if g == "audit" && m.Attempt == 1 {
				return pubsub.Permanent(assert.AnError) // keep the ID on the dead letter
			}
			return nil
		}, pubsub.WithBackoff(10*time.Millisecond, 20*time.Millisecond), pubsub.WithConcurrency(1))
		require.NoError(t, err)
	}

	nc, _ := rawClient(t, raw)
	defer nc.Close()
	subject := ns + ".orders.created"
	require.NoError(t, nc.PublishMsg(&natsgo.Msg{Subject: subject, Data: []byte("from a core client"),
		Header: natsgo.Header{"trace": {"t-1"}, "Nats-Msg-Id": {"order-7"}}}))
	require.NoError(t, nc.Publish(subject, []byte("no headers at all")))
	require.NoError(t, nc.Flush())

	for g, ch := range got {
		first, second := recv(t, ch, 10*time.Second), recv(t, ch, 10*time.Second)
		assert.Equal(t, "order-7", first.ID, g)
		assert.Equal(t, []byte("from a core client"), first.Payload, g)
		assert.Equal(t, map[string]string{"trace": "t-1"}, first.Metadata, g)
		assert.Equal(t, 1, first.Attempt, g)
		assert.Equal(t, []byte("no headers at all"), second.Payload, g)
		assert.Equal(t, ns+"_orders_created:2", second.ID, "%s: stream and sequence as ID", g)
		assert.Empty(t, second.Metadata, g)
	}
	dls, err := b.ListDeadLetters(ctx, "orders.created", "audit", 0)
	require.NoError(t, err)
	require.Len(t, dls, 2)
	assert.Equal(t, []string{"order-7", ns + "_orders_created:2"}, []string{dls[0].ID, dls[1].ID}, "the IDs stay on the dead letters")
}

// What Switchyard publishes is a plain JetStream message that the raw
// client reads: payload as data, ID in Nats-Msg-Id, key in
// x-switchyard-key, each metadata entry a header of its own.
func TestInteropRawClientReadsSwitchyard(t *testing.T) {
	raw := testURL(t, "")
	ns := mustParse(t, raw).Namespace
	b := openTest(t, raw)
	ctx := context.Background()
	require.NoError(t, b.CreateGroup(ctx, "payments", "ledger"))
	require.NoError(t, b.Publish(ctx, "payments", &pubsub.Message{
		ID: "pay-1", Key: "customer-9", Payload: []byte{0xff, 0x00, 'x'},
		Metadata: map[string]string{"content-type": "application/octet-stream", "multi-line": "a\nb"},
	}))

	nc, js := rawClient(t, raw)
	defer nc.Close()
	// An ordered consumer of the raw client, on the documented subject.
	c, err := js.OrderedConsumer(ctx, ns+"_payments", jetstream.OrderedConsumerConfig{FilterSubjects: []string{ns + ".payments"}})
	require.NoError(t, err)
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	require.NoError(t, err)
	assert.Equal(t, ns+".payments", m.Subject())
	assert.Equal(t, []byte{0xff, 0x00, 'x'}, m.Data())
	h := m.Headers()
	assert.Equal(t, "pay-1", h.Get("Nats-Msg-Id"))
	assert.Equal(t, "customer-9", h.Get("x-switchyard-key"))
	assert.Equal(t, "application/octet-stream", h.Get("content-type"))
	assert.Equal(t, "=?utf-8?b?YQpi?=", h.Get("multi-line"), "a value with a line break is an RFC 2047 encoded-word")
	assert.Len(t, h, 4)

	// The group's durable consumer is a plain pull consumer too.
	info, err := js.Consumer(ctx, ns+"_payments", "ledger")
	require.NoError(t, err)
	assert.Equal(t, ns+".payments", info.CachedInfo().Config.FilterSubject)
	assert.Equal(t, uint64(1), info.CachedInfo().NumPending)
}
