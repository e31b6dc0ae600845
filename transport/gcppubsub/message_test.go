package gcppubsub

import (
	"math/rand/v2"
	"strings"
	"testing"

	gpubsub "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestEncodedSizeIsProtoSize: the arithmetic size equals what the client
// measures (proto.Size of the encoded message) for any message.
func TestEncodedSizeIsProtoSize(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	str := func(max int) string { return strings.Repeat("x", r.IntN(max+1)) }
	for i := range 2000 {
		m := &pubsub.Message{ID: str(40), Key: str(300), Payload: make([]byte, r.IntN(70000))}
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
			m.Metadata[pubsub.MetadataDeadLetterReason] = strings.Repeat("é", r.IntN(2000)) + "\xff"
		}
		id := m.ID
		if id == "" {
			id = pubsub.NewID()
		}
		want := proto.Size(&pb.PubsubMessage{Data: m.Payload, Attributes: attributes(m, id), OrderingKey: m.Key})
		require.Equal(t, want, encodedSize(m), "message %d: %d metadata, payload %d", i, len(m.Metadata), len(m.Payload))
	}
}

func TestTruncateUTF8(t *testing.T) {
	assert.Equal(t, "abc", truncateUTF8("abc", 5))
	assert.Equal(t, "ab", truncateUTF8("abc", 2))
	assert.Equal(t, "a", truncateUTF8("aé", 2), "not inside a rune")
	assert.Equal(t, "aé", truncateUTF8("aéb", 3))
}

func TestDecodeSeparatesTheID(t *testing.T) {
	m := &pubsub.Message{ID: "id-1", Key: "k", Metadata: map[string]string{"a": "1"}, Payload: []byte{0xff}}
	got := decode(encodeForTest(m))
	assert.Equal(t, &pubsub.Message{ID: "id-1", Key: "k", Metadata: map[string]string{"a": "1"}, Payload: []byte{0xff}}, got)
}

func encodeForTest(m *pubsub.Message) *gpubsub.Message {
	g := encode(m)
	g.ID = "server-id"
	return g
}
