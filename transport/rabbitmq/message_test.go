package rabbitmq

import (
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// deliver turns a publishing into the delivery a consumer would see.
func deliver(p amqp.Publishing, redelivered bool, extra amqp.Table) amqp.Delivery {
	h := amqp.Table{}
	for k, v := range p.Headers {
		h[k] = v
	}
	for k, v := range extra {
		h[k] = v
	}
	return amqp.Delivery{Headers: h, ContentType: p.ContentType, MessageId: p.MessageId, Body: p.Body, DeliveryMode: p.DeliveryMode, Redelivered: redelivered}
}

func TestMessageMapping(t *testing.T) {
	m := &pubsub.Message{
		ID:       "id-1",
		Key:      "customer-7",
		Metadata: map[string]string{"trace": "abc", "content-type": "application/json", "empty": "", "x-request-id": "r"},
		Payload:  []byte{0xff, 0, 'x'},
		Attempt:  9, // ignored by Publish
	}
	require.NoError(t, checkMessage(m))
	p := toPublishing(m)
	assert.Equal(t, "id-1", p.MessageId)
	assert.Equal(t, "application/json", p.ContentType)
	assert.Equal(t, amqp.Persistent, p.DeliveryMode)
	assert.Equal(t, amqp.Table{"trace": "abc", "empty": "", "x-request-id": "r", "x-switchyard-key": "customer-7"}, p.Headers)
	assert.Equal(t, m.Payload, p.Body)

	d := deliver(p, false, nil)
	got := fromDelivery(&d)
	assert.Equal(t, &pubsub.Message{ID: "id-1", Key: "customer-7", Metadata: map[string]string{"trace": "abc", "content-type": "application/json", "empty": "", "x-request-id": "r"}, Payload: m.Payload, Attempt: 1}, got)

	t.Run("empty content type stays a header", func(t *testing.T) {
		p := toPublishing(&pubsub.Message{ID: "x", Metadata: map[string]string{"content-type": ""}})
		assert.Equal(t, "", p.ContentType)
		d := deliver(p, false, nil)
		assert.Equal(t, map[string]string{"content-type": ""}, fromDelivery(&d).Metadata)
	})
	t.Run("no metadata", func(t *testing.T) {
		p := toPublishing(&pubsub.Message{ID: "x"})
		assert.Nil(t, p.Headers)
		d := deliver(p, false, nil)
		got := fromDelivery(&d)
		assert.Empty(t, got.Metadata)
		assert.Equal(t, "", got.Key)
		assert.Equal(t, map[string]string{}, (&delivery{msg: got}).Message().Metadata, "handlers get a map they can add to")
	})
	t.Run("headers of other clients", func(t *testing.T) {
		d := amqp.Delivery{Headers: amqp.Table{"n": int32(7), "b": []byte("bytes"), "t": true}, ContentType: "text/plain"}
		assert.Equal(t, map[string]string{"n": "7", "b": "bytes", "t": "true", "content-type": "text/plain"}, fromDelivery(&d).Metadata)
	})
}

func TestAttempt(t *testing.T) {
	p := toPublishing(&pubsub.Message{ID: "x"})
	for _, tc := range []struct {
		name        string
		redelivered bool
		headers     amqp.Table
		want        int
	}{
		{"first delivery", false, nil, 1},
		{"classic redelivery", true, nil, 2},
		{"quorum redelivery", true, amqp.Table{"x-delivery-count": int64(3)}, 4},
		{"retry copy", false, amqp.Table{"x-switchyard-attempt": int64(3)}, 3},
		{"retry copy, then two crashes", true, amqp.Table{"x-switchyard-attempt": int32(3), "x-delivery-count": int64(2)}, 5},
		{"retry copy on classic, crashed", true, amqp.Table{"x-switchyard-attempt": int64(3)}, 4},
		{"garbage attempt header", false, amqp.Table{"x-switchyard-attempt": "zero"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deliver(p, tc.redelivered, tc.headers)
			assert.Equal(t, tc.want, fromDelivery(&d).Attempt)
		})
	}
}

func TestRetryPublishing(t *testing.T) {
	p := toPublishing(&pubsub.Message{ID: "id", Key: "k", Metadata: map[string]string{"a": "1", "content-type": "text/plain"}, Payload: []byte("body")})
	d := deliver(p, true, amqp.Table{"x-delivery-count": int64(1), "x-death": []any{amqp.Table{"count": int64(1)}}, "x-first-death-queue": "q", "x-switchyard-attempt": int64(2)})
	r := retryPublishing(&d, 4)
	assert.Equal(t, amqp.Table{"a": "1", "x-switchyard-key": "k", "x-switchyard-attempt": int64(4)}, r.Headers)
	assert.Equal(t, "id", r.MessageId)
	assert.Equal(t, "text/plain", r.ContentType)
	assert.Equal(t, amqp.Persistent, r.DeliveryMode)
	assert.Equal(t, []byte("body"), r.Body)
	back := deliver(r, false, nil)
	got := fromDelivery(&back)
	assert.Equal(t, 4, got.Attempt)
	assert.Equal(t, "k", got.Key)
	assert.Equal(t, map[string]string{"a": "1", "content-type": "text/plain"}, got.Metadata)
}

func TestCheckMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  *pubsub.Message
		want string
	}{
		{"reserved key header", &pubsub.Message{Metadata: map[string]string{"x-switchyard-key": "k"}}, "reserved"},
		{"reserved attempt header", &pubsub.Message{Metadata: map[string]string{"x-switchyard-attempt": "1"}}, "reserved"},
		{"broker header", &pubsub.Message{Metadata: map[string]string{"x-delivery-count": "1"}}, "reserved"},
		{"long ID", &pubsub.Message{ID: strings.Repeat("i", 256)}, "message_id"},
		{"long metadata key", &pubsub.Message{Metadata: map[string]string{strings.Repeat("k", 256): ""}}, "header names"},
		{"long content type", &pubsub.Message{Metadata: map[string]string{"content-type": strings.Repeat("c", 256)}}, "content_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMessage(tc.msg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.NoError(t, checkMessage(&pubsub.Message{ID: strings.Repeat("i", 255), Metadata: map[string]string{strings.Repeat("k", 255): strings.Repeat("v", 1000)}}))
}

func TestCloudEventsBinding(t *testing.T) {
	m := &pubsub.Message{ID: "e1", Metadata: map[string]string{
		pubsub.MetadataCEID: "e1", pubsub.MetadataCEType: "user.activity", pubsub.MetadataCESpecVersion: "1.0",
		pubsub.MetadataContentType: "application/json", "plain": "p",
	}}
	require.NoError(t, checkMessage(m))
	p := toPublishing(m)
	assert.Equal(t, amqp.Table{"cloudEvents:id": "e1", "cloudEvents:type": "user.activity", "cloudEvents:specversion": "1.0", "plain": "p"}, p.Headers,
		"AMQP binding of CloudEvents: attributes as cloudEvents: headers")
	assert.Equal(t, "application/json", p.ContentType, "datacontenttype is content_type")
	d := deliver(p, false, nil)
	assert.Equal(t, m.Metadata, fromDelivery(&d).Metadata)

	err := checkMessage(&pubsub.Message{Metadata: map[string]string{"cloudEvents:id": "x"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `metadata key "cloudEvents:id" is reserved`)
}
