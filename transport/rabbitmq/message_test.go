package rabbitmq

import (
	"math"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
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
	m := &driver.Message{
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
	got := fromDelivery(&d, QueueQuorum)
	assert.Equal(t, &driver.Message{ID: "id-1", Key: "customer-7", Metadata: map[string]string{"trace": "abc", "content-type": "application/json", "empty": "", "x-request-id": "r"}, Payload: m.Payload, Attempt: 1}, got)

	t.Run("empty content type stays a header", func(t *testing.T) {
		p := toPublishing(&driver.Message{ID: "x", Metadata: map[string]string{"content-type": ""}})
		assert.Equal(t, "", p.ContentType)
		d := deliver(p, false, nil)
		assert.Equal(t, map[string]string{"content-type": ""}, fromDelivery(&d, QueueQuorum).Metadata)
	})
	t.Run("no metadata", func(t *testing.T) {
		p := toPublishing(&driver.Message{ID: "x"})
		assert.Nil(t, p.Headers)
		d := deliver(p, false, nil)
		got := fromDelivery(&d, QueueQuorum)
		assert.Nil(t, got.Metadata)
		assert.Equal(t, "", got.Key)
	})
}

// TestHeaderFormats: header values of every AMQP field type, as other
// clients send them, become the documented portable text.
func TestHeaderFormats(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"string", "plain", "plain"},
		{"bytes", []byte("raw \xff"), "raw \xff"},
		{"bool true", true, "true"},
		{"bool false", false, "false"},
		{"int8", int8(-8), "-8"},
		{"uint8", uint8(200), "200"},
		{"int16", int16(-300), "-300"},
		{"uint16", uint16(60000), "60000"},
		{"int32", int32(-70000), "-70000"},
		{"uint32", uint32(4000000000), "4000000000"},
		{"int64", int64(-1 << 40), "-1099511627776"},
		{"float32", float32(0.25), "0.25"},
		{"float64", 1.5e21, "1.5e+21"},
		{"decimal 0.5", amqp.Decimal{Scale: 1, Value: 5}, "0.5"},
		{"decimal 0.05", amqp.Decimal{Scale: 2, Value: 5}, "0.05"},
		{"decimal -1.25", amqp.Decimal{Scale: 2, Value: -125}, "-1.25"},
		{"decimal 42", amqp.Decimal{Scale: 0, Value: 42}, "42"},
		{"timestamp", at, "2024-05-01T10:30:00Z"},
		{"void", nil, ""},
		{"table", amqp.Table{"b": int32(2), "a": "x", "d": amqp.Decimal{Scale: 1, Value: 5}, "n": nil, "t": at, "raw": []byte("r"), "ok": true, "f": math.Inf(1)},
			`{"a":"x","b":2,"d":0.5,"f":"+Inf","n":null,"ok":true,"raw":"r","t":"2024-05-01T10:30:00Z"}`},
		{"array", []any{int64(1), "two", amqp.Table{"three": float64(3.5)}, []any{}}, `[1,"two",{"three":3.5},[]]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, headerString(tc.v))
			d := amqp.Delivery{MessageId: "x", Headers: amqp.Table{"h": tc.v}}
			assert.Equal(t, tc.want, fromDelivery(&d, QueueQuorum).Metadata["h"], "as metadata")
		})
	}
}

// TestDerivedID: a message without message_id gets an ID from its content,
// the same on every delivery of it and different for other content.
func TestDerivedID(t *testing.T) {
	base := amqp.Delivery{ContentType: "text/plain", Headers: amqp.Table{"lang": "python", "n": int32(3)}, Body: []byte("hi"), Timestamp: time.Unix(1700000000, 0)}
	id := fromDelivery(&base, QueueQuorum).ID
	assert.Regexp(t, `^amqp-[0-9a-f]{32}$`, id)

	redelivered := base
	redelivered.Redelivered = true
	redelivered.DeliveryTag = 99
	redelivered.Exchange = "other"
	redelivered.Headers = amqp.Table{"lang": "python", "n": int32(3), "x-delivery-count": int64(4), "x-switchyard-attempt": int64(2), "x-death": []any{}}
	assert.Equal(t, id, fromDelivery(&redelivered, QueueQuorum).ID, "broker and transport headers, tags and routing do not change it")

	for name, change := range map[string]func(d *amqp.Delivery){
		"body":         func(d *amqp.Delivery) { d.Body = []byte("ho") },
		"header value": func(d *amqp.Delivery) { d.Headers = amqp.Table{"lang": "go", "n": int32(3)} },
		"header gone":  func(d *amqp.Delivery) { d.Headers = amqp.Table{"lang": "python"} },
		"content type": func(d *amqp.Delivery) { d.ContentType = "text/html" },
		"timestamp":    func(d *amqp.Delivery) { d.Timestamp = time.Unix(1700000001, 0) },
		"app id":       func(d *amqp.Delivery) { d.AppId = "billing" },
	} {
		other := base
		change(&other)
		assert.NotEqual(t, id, fromDelivery(&other, QueueQuorum).ID, name)
	}
	withID := base
	withID.MessageId = "given"
	assert.Equal(t, "given", fromDelivery(&withID, QueueQuorum).ID, "a message_id is the ID")

	c := copyOf(&base, id, 3)
	assert.Equal(t, id, c.MessageId, "copies carry the derived ID")
}

func TestAttempt(t *testing.T) {
	p := toPublishing(&driver.Message{ID: "x"})
	for _, tc := range []struct {
		name        string
		qt          QueueType
		redelivered bool
		headers     amqp.Table
		want        int
	}{
		{"first delivery", QueueQuorum, false, nil, 1},
		{"classic redelivery", QueueClassic, true, nil, 2},
		{"quorum redelivery", QueueQuorum, true, amqp.Table{"x-delivery-count": int64(3)}, 4},
		{"quorum redelivery not counted (4.3 basic.nack)", QueueQuorum, true, nil, 1},
		{"classic counted (4.3)", QueueClassic, true, amqp.Table{"x-delivery-count": int64(2)}, 3},
		{"copy", QueueQuorum, false, amqp.Table{"x-switchyard-attempt": int64(3)}, 3},
		{"copy, then two crashes", QueueQuorum, true, amqp.Table{"x-switchyard-attempt": int32(3), "x-delivery-count": int64(2)}, 5},
		{"copy on classic, crashed", QueueClassic, true, amqp.Table{"x-switchyard-attempt": int64(3)}, 4},
		{"garbage attempt header", QueueQuorum, false, amqp.Table{"x-switchyard-attempt": "zero"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deliver(p, tc.redelivered, tc.headers)
			assert.Equal(t, tc.want, fromDelivery(&d, tc.qt).Attempt)
		})
	}
}

func TestCopyOf(t *testing.T) {
	p := toPublishing(&driver.Message{ID: "id", Key: "k", Metadata: map[string]string{"a": "1", "content-type": "text/plain"}, Payload: []byte("body")})
	d := deliver(p, true, amqp.Table{"x-delivery-count": int64(1), "x-death": []any{amqp.Table{"count": int64(1)}}, "x-first-death-queue": "q", "x-switchyard-attempt": int64(2)})
	r := copyOf(&d, "id", 4)
	assert.Equal(t, amqp.Table{"a": "1", "x-switchyard-key": "k", "x-switchyard-attempt": int64(4)}, r.Headers)
	assert.Equal(t, "id", r.MessageId)
	assert.Equal(t, "text/plain", r.ContentType)
	assert.Equal(t, amqp.Persistent, r.DeliveryMode)
	assert.Equal(t, []byte("body"), r.Body)
	back := deliver(r, false, nil)
	got := fromDelivery(&back, QueueQuorum)
	assert.Equal(t, 4, got.Attempt)
	assert.Equal(t, "k", got.Key)
	assert.Equal(t, map[string]string{"a": "1", "content-type": "text/plain"}, got.Metadata)
}

func TestCheckMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  *driver.Message
		want string
	}{
		{"reserved key header", &driver.Message{Metadata: map[string]string{"x-switchyard-key": "k"}}, "reserved"},
		{"reserved attempt header", &driver.Message{Metadata: map[string]string{"x-switchyard-attempt": "1"}}, "reserved"},
		{"broker header", &driver.Message{Metadata: map[string]string{"x-delivery-count": "1"}}, "reserved"},
		{"long ID", &driver.Message{ID: strings.Repeat("i", 256)}, "message_id"},
		{"long metadata key", &driver.Message{Metadata: map[string]string{strings.Repeat("k", 256): ""}}, "header names"},
		{"long content type", &driver.Message{Metadata: map[string]string{"content-type": strings.Repeat("c", 256)}}, "content_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMessage(tc.msg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.NoError(t, checkMessage(&driver.Message{ID: strings.Repeat("i", 255), Metadata: map[string]string{strings.Repeat("k", 255): strings.Repeat("v", 1000)}}))

	b := &broker{cfg: Config{MaxMessageBytes: 10}}
	assert.ErrorIs(t, b.CheckMessage(&driver.Message{Payload: make([]byte, 11)}), pubsub.ErrMessageTooLarge)
	assert.NoError(t, b.CheckMessage(&driver.Message{Payload: make([]byte, 10)}))
	assert.ErrorIs(t, b.CheckMessage(&driver.Message{Metadata: map[string]string{"x-death": "1"}}), pubsub.ErrInvalidMessage)
}

func TestCloudEventsBinding(t *testing.T) {
	m := &driver.Message{ID: "e1", Metadata: map[string]string{
		pubsub.MetadataCEID: "e1", pubsub.MetadataCEType: "user.activity", pubsub.MetadataCESpecVersion: "1.0",
		pubsub.MetadataContentType: "application/json", "plain": "p",
	}}
	require.NoError(t, checkMessage(m))
	p := toPublishing(m)
	assert.Equal(t, amqp.Table{"cloudEvents:id": "e1", "cloudEvents:type": "user.activity", "cloudEvents:specversion": "1.0", "plain": "p"}, p.Headers,
		"AMQP binding of CloudEvents: attributes as cloudEvents: headers")
	assert.Equal(t, "application/json", p.ContentType, "datacontenttype is content_type")
	d := deliver(p, false, nil)
	assert.Equal(t, m.Metadata, fromDelivery(&d, QueueQuorum).Metadata)

	err := checkMessage(&driver.Message{Metadata: map[string]string{"cloudEvents:id": "x"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `metadata key "cloudEvents:id" is reserved`)
}
