package gcppubsub

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// TestEncodedSizeIsProtoSize: the arithmetic size equals what the client
// measures (proto.Size of the encoded message) for any message.
func TestEncodedSizeIsProtoSize(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	str := func(max int) string { return strings.Repeat("x", r.IntN(max+1)) }
	for i := range 2000 {
		m := &driver.Message{ID: str(40), Key: str(300), Payload: make([]byte, r.IntN(70000))}
		if r.IntN(3) > 0 {
			m.Metadata = map[string]string{}
			for range r.IntN(10) {
				m.Metadata[str(300)] = str(2000)
			}
		}
		if r.IntN(5) == 0 {
			if m.Metadata == nil {
				m.Metadata = map[string]string{}
			}
			m.Metadata[driver.MetadataDeadLetterReason] = strings.Repeat("é", r.IntN(2000)) + "\xff"
		}
		size := encodedSize(m)
		if m.ID == "" {
			m.ID = pubsub.NewID()
		}
		want := proto.Size(&pb.PubsubMessage{Data: m.Payload, Attributes: attributes(m), OrderingKey: m.Key})
		require.Equal(t, want, size, "message %d: %d metadata, payload %d", i, len(m.Metadata), len(m.Payload))
	}
}

func TestTruncateUTF8(t *testing.T) {
	assert.Equal(t, "abc", truncateUTF8("abc", 5))
	assert.Equal(t, "ab", truncateUTF8("abc", 2))
	assert.Equal(t, "a", truncateUTF8("aé", 2), "not inside a rune")
	assert.Equal(t, "aé", truncateUTF8("aéb", 3))
}

func TestDecodeSeparatesTheID(t *testing.T) {
	m := &driver.Message{ID: "id-1", Key: "k", Metadata: map[string]string{"a": "1"}, Payload: []byte{0xff}}
	got := decode(withServerID(encode(m)))
	assert.Equal(t, &driver.Message{ID: "id-1", Key: "k", Metadata: map[string]string{"a": "1"}, Payload: []byte{0xff}}, got.msg)
	assert.Equal(t, 1, got.base)
	assert.True(t, got.notBefore.IsZero())
}

// TestHandBackAttributes: a message handed back carries its group, Attempt
// and backoff in attributes that decode takes out of the metadata.
func TestHandBackAttributes(t *testing.T) {
	m := &driver.Message{ID: "id-1", Metadata: map[string]string{"a": "1"}, Payload: []byte("p")}
	until := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	g := encodeFor(m, handBack{to: "billing", attempt: 3, notBefore: until})
	assert.Equal(t, map[string]string{"a": "1", attrID: "id-1", attrTo: "billing", attrAttempt: "3", attrNotBefore: "2030-01-02T03:04:05.0000006Z"}, g.Attributes)
	got := decode(withServerID(g))
	assert.Equal(t, m, got.msg)
	assert.Equal(t, 3, got.base)
	assert.True(t, until.Equal(got.notBefore))

	g = encodeFor(m, handBack{to: "billing", attempt: 1})
	assert.NotContains(t, g.Attributes, attrAttempt, "Attempt 1 is the default")
	assert.NotContains(t, g.Attributes, attrNotBefore)
	assert.Equal(t, map[string]string{"a": "1"}, m.Metadata, "the message is not changed")
}

// TestDecodeForeignMessage: a message from another publisher gets Pub/Sub's
// ID; malformed transport attributes are ignored.
func TestDecodeForeignMessage(t *testing.T) {
	got := decode(withServerID(&gpubsub.Message{Data: []byte("x"), Attributes: map[string]string{"k": "v", attrAttempt: "zero", attrNotBefore: "soon"}}))
	assert.Equal(t, "server-id", got.msg.ID)
	assert.Equal(t, map[string]string{"k": "v"}, got.msg.Metadata)
	assert.Equal(t, 1, got.base)
	assert.True(t, got.notBefore.IsZero())
}

func withServerID(g *gpubsub.Message) *gpubsub.Message {
	g.ID = "server-id"
	return g
}
