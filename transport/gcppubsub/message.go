package gcppubsub

import (
	"fmt"
	"strings"
	"unicode/utf8"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Pub/Sub's per-message limits, and what Switchyard keeps of them.
const (
	// attrID is the attribute that carries Message.ID (Pub/Sub assigns its
	// own message IDs, which differ on every publish).
	attrID = "switchyard-id"

	maxAttributes       = 100  // attributes per message
	maxAttrKeyBytes     = 256  // bytes per attribute key
	maxAttrValueBytes   = 1024 // bytes per attribute value
	maxOrderingKeyBytes = 1024 // bytes per ordering key

	// deadLetterAttrs is how many attributes the portable layer adds to a
	// dead letter; user metadata is limited so that they still fit.
	deadLetterAttrs = 4
	// maxMetadata is the most metadata entries a message may have: room is
	// kept for the ID attribute and for the dead-letter metadata.
	maxMetadata = maxAttributes - 1 - deadLetterAttrs
	// deadLetterHeadroom is the room, in bytes, that DefaultMaxMessageBytes
	// keeps below Pub/Sub's request limit: the publish request's topic name
	// (at most about 350 bytes) and the dead-letter metadata (at most about
	// 1,600 bytes: a reason cut to 1,024 bytes, two names of at most 200
	// bytes, an attempt count, their keys and framing).
	deadLetterHeadroom = 4096
)

// encoder validates messages and turns them into Pub/Sub messages.
type encoder struct {
	maxBytes int // Config.MaxMessageBytes
}

// check validates m, the i-th message (0-based) of n bound for topic, against
// Pub/Sub's limits, before anything is sent. Its errors wrap
// pubsub.ErrInvalidMessage (nil message, reserved or malformed attribute
// names, text that is not UTF-8) or pubsub.ErrMessageTooLarge (every size
// limit).
func (e encoder) check(topic string, i, n int, m *pubsub.Message) error {
	where := func() string { return fmt.Sprintf("gcppubsub: message %d of %d to topic %s", i+1, n, topic) }
	if m == nil {
		return fmt.Errorf("%s is nil: %w", where(), pubsub.ErrInvalidMessage)
	}
	deadLetter := false
	if _, ok := m.Metadata[pubsub.MetadataDeadLetterReason]; ok {
		deadLetter = true
	}
	if limit := maxMetadata + deadLetterAttrs*b2i(deadLetter); len(m.Metadata) > limit {
		return fmt.Errorf("%s has %d metadata entries, over the limit of %d (Pub/Sub allows %d attributes; one carries the ID, %d are kept for dead-letter metadata): %w",
			where(), len(m.Metadata), limit, maxAttributes, deadLetterAttrs, pubsub.ErrMessageTooLarge)
	}
	for k, v := range m.Metadata {
		if k == pubsub.MetadataDeadLetterReason {
			v = "" // free text, made to fit by attributes
		}
		switch {
		case k == "":
			return fmt.Errorf("%s has an empty metadata key: %w", where(), pubsub.ErrInvalidMessage)
		case k == attrID:
			return fmt.Errorf("%s uses the reserved metadata key %q, which carries the message ID: %w", where(), k, pubsub.ErrInvalidMessage)
		case strings.HasPrefix(strings.ToLower(k), "goog"):
			return fmt.Errorf("%s has metadata key %q; Pub/Sub reserves keys starting with \"goog\": %w", where(), k, pubsub.ErrInvalidMessage)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("%s has metadata %q that is not UTF-8, which Pub/Sub attributes must be: %w", where(), k, pubsub.ErrInvalidMessage)
		case len(k) > maxAttrKeyBytes:
			return fmt.Errorf("%s has a metadata key of %d bytes, over Pub/Sub's limit of %d: %w", where(), len(k), maxAttrKeyBytes, pubsub.ErrMessageTooLarge)
		case len(v) > maxAttrValueBytes:
			return fmt.Errorf("%s has metadata %q with a value of %d bytes, over Pub/Sub's limit of %d: %w", where(), k, len(v), maxAttrValueBytes, pubsub.ErrMessageTooLarge)
		}
	}
	if !utf8.ValidString(m.ID) || !utf8.ValidString(m.Key) {
		return fmt.Errorf("%s has an ID or Key that is not UTF-8: %w", where(), pubsub.ErrInvalidMessage)
	}
	if len(m.ID) > maxAttrValueBytes {
		return fmt.Errorf("%s has an ID of %d bytes, over the limit of %d (it travels as an attribute): %w", where(), len(m.ID), maxAttrValueBytes, pubsub.ErrMessageTooLarge)
	}
	if len(m.Key) > maxOrderingKeyBytes {
		return fmt.Errorf("%s has a Key of %d bytes, over Pub/Sub's ordering key limit of %d: %w", where(), len(m.Key), maxOrderingKeyBytes, pubsub.ErrMessageTooLarge)
	}
	limit := e.maxBytes + deadLetterHeadroom*b2i(deadLetter)
	if size := encodedSize(m); size > limit {
		return fmt.Errorf("%s is %d bytes encoded (payload %d), over the limit of %d: %w", where(), size, len(m.Payload), limit, pubsub.ErrMessageTooLarge)
	}
	return nil
}

// encodedSize is the size Pub/Sub and its client measure: the encoded
// PubsubMessage with data, attributes (metadata and the ID) and ordering
// key, as proto.Size would report it, computed without building the message.
// A message without an ID yet is measured with the 32-byte ID Publish will
// give it; a dead-letter reason as attributes will cut it.
func encodedSize(m *pubsub.Message) int {
	idLen := len(m.ID)
	if m.ID == "" {
		idLen = 32
	}
	n := bytesField(len(m.Payload)) + bytesField(len(m.Key)) + mapEntry(len(attrID), idLen)
	for k, v := range m.Metadata {
		if k == pubsub.MetadataDeadLetterReason {
			v = truncateUTF8(strings.ToValidUTF8(v, "\uFFFD"), maxAttrValueBytes)
		}
		n += mapEntry(len(k), len(v))
	}
	return n
}

// bytesField is the encoded size of a non-repeated bytes or string field
// with a one-byte tag, omitted when empty (proto3).
func bytesField(n int) int {
	if n == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(uint64(n)) + n
}

// mapEntry is the encoded size of one map<string, string> entry: a
// length-delimited entry holding its key and value fields (written even when
// empty).
func mapEntry(k, v int) int {
	e := 1 + protowire.SizeVarint(uint64(k)) + k + 1 + protowire.SizeVarint(uint64(v)) + v
	return 1 + protowire.SizeVarint(uint64(e)) + e
}

// attributes returns m's metadata plus the ID attribute. A dead-letter
// reason is made to fit an attribute value: cut to 1,024 bytes at a rune
// boundary, invalid UTF-8 replaced.
func attributes(m *pubsub.Message, id string) map[string]string {
	attrs := make(map[string]string, len(m.Metadata)+1)
	for k, v := range m.Metadata {
		attrs[k] = v
	}
	if r, ok := attrs[pubsub.MetadataDeadLetterReason]; ok {
		attrs[pubsub.MetadataDeadLetterReason] = truncateUTF8(strings.ToValidUTF8(r, "\uFFFD"), maxAttrValueBytes)
	}
	attrs[attrID] = id
	return attrs
}

// encode returns the Pub/Sub message for m, which has passed check and has
// an ID.
func encode(m *pubsub.Message) *gpubsub.Message {
	return &gpubsub.Message{Data: m.Payload, Attributes: attributes(m, m.ID), OrderingKey: m.Key}
}

// decode returns the Switchyard message that m carries, without Attempt.
// Messages published by other clients, without the ID attribute, get
// Pub/Sub's message ID.
func decode(m *gpubsub.Message) *pubsub.Message {
	out := &pubsub.Message{ID: m.ID, Key: m.OrderingKey, Metadata: make(map[string]string, len(m.Attributes)), Payload: m.Data}
	for k, v := range m.Attributes {
		if k == attrID {
			out.ID = v
			continue
		}
		out.Metadata[k] = v
	}
	return out
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
