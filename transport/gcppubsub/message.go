package gcppubsub

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Attributes the transport sets on Pub/Sub messages besides the metadata.
// Metadata may not use them.
const (
	// attrID carries Message.ID (Pub/Sub assigns its own message IDs, which
	// differ on every publish).
	attrID = "switchyard-id"
	// attrTo, on a message published to a topic, limits it to one group of
	// the topic (targetValue): every group's subscription filter lets it
	// through only for that group. Replayed dead letters and messages
	// handed back untouched carry it.
	attrTo = "switchyard-to"
	// attrAttempt is the Attempt of a handed-back message's next delivery,
	// when it is not 1.
	attrAttempt = "switchyard-attempt"
	// attrNotBefore (RFC 3339, UTC) holds a handed-back message back until
	// then: the rest of its retry backoff.
	attrNotBefore = "switchyard-not-before"
)

// transportAttrs are the attributes decode removes from the metadata.
var transportAttrs = []string{attrID, attrTo, attrAttempt, attrNotBefore}

// Pub/Sub's per-message limits, and what Switchyard keeps of them.
const (
	maxAttributes       = 100  // attributes per message
	maxAttrKeyBytes     = 256  // bytes per attribute key
	maxAttrValueBytes   = 1024 // bytes per attribute value
	maxOrderingKeyBytes = 1024 // bytes per ordering key

	// deadLetterAttrs is how many metadata entries the portable layer adds
	// to a dead letter.
	deadLetterAttrs = 5
	// maxMetadata is the most metadata entries a message may have: room is
	// kept for the transport's attributes (a handed-back message carries
	// four) and for the dead-letter metadata (five, with the ID).
	maxMetadata = maxAttributes - 1 - deadLetterAttrs
	// deadLetterHeadroom is the room, in bytes, that DefaultMaxMessageBytes
	// keeps below Pub/Sub's request limit: the publish request's topic name
	// (at most about 350 bytes), the dead-letter metadata (at most about
	// 1,700 bytes: a reason cut to 1,024 bytes, a time, two names of at
	// most 200 bytes, an attempt count, their keys and framing), and the
	// attributes of a handed-back message (at most about 350 bytes).
	deadLetterHeadroom = 4096
)

// checkMessage validates m against Pub/Sub's limits, with maxBytes the
// largest encoded size. Its errors wrap driver.ErrInvalidMessage (reserved
// or malformed attribute names, text that is not UTF-8) or
// driver.ErrMessageTooLarge (every size limit).
func checkMessage(m *driver.Message, maxBytes int) error {
	deadLetter := 0
	for k := range m.Metadata {
		if driver.IsDeadLetterKey(k) {
			deadLetter++
		}
	}
	if n := len(m.Metadata) - deadLetter; n > maxMetadata {
		return fmt.Errorf("gcppubsub: message has %d metadata entries, over the limit of %d (Pub/Sub allows %d attributes; %d are kept for the ID and the dead-letter metadata): %w",
			n, maxMetadata, maxAttributes, maxAttributes-maxMetadata, driver.ErrMessageTooLarge)
	}
	for k, v := range m.Metadata {
		if k == driver.MetadataDeadLetterReason {
			v = "" // free text, made to fit by attributes
		}
		switch {
		case k == "":
			return fmt.Errorf("gcppubsub: message has an empty metadata key: %w", driver.ErrInvalidMessage)
		case isTransportAttr(k):
			return fmt.Errorf("gcppubsub: message uses the reserved metadata key %q, which the transport sets: %w", k, driver.ErrInvalidMessage)
		case strings.HasPrefix(strings.ToLower(k), "goog"):
			return fmt.Errorf("gcppubsub: message has metadata key %q; Pub/Sub reserves keys starting with \"goog\": %w", k, driver.ErrInvalidMessage)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("gcppubsub: message has metadata %q that is not UTF-8, which Pub/Sub attributes must be: %w", k, driver.ErrInvalidMessage)
		case len(k) > maxAttrKeyBytes:
			return fmt.Errorf("gcppubsub: message has a metadata key of %d bytes, over Pub/Sub's limit of %d: %w", len(k), maxAttrKeyBytes, driver.ErrMessageTooLarge)
		case len(v) > maxAttrValueBytes:
			return fmt.Errorf("gcppubsub: message has metadata %q with a value of %d bytes, over Pub/Sub's limit of %d: %w", k, len(v), maxAttrValueBytes, driver.ErrMessageTooLarge)
		}
	}
	if !utf8.ValidString(m.ID) || !utf8.ValidString(m.Key) {
		return fmt.Errorf("gcppubsub: message has an ID or Key that is not UTF-8: %w", driver.ErrInvalidMessage)
	}
	if len(m.ID) > maxAttrValueBytes {
		return fmt.Errorf("gcppubsub: message has an ID of %d bytes, over the limit of %d (it travels as an attribute): %w", len(m.ID), maxAttrValueBytes, driver.ErrMessageTooLarge)
	}
	if len(m.Key) > maxOrderingKeyBytes {
		return fmt.Errorf("gcppubsub: message has a Key of %d bytes, over Pub/Sub's ordering key limit of %d: %w", len(m.Key), maxOrderingKeyBytes, driver.ErrMessageTooLarge)
	}
	limit := maxBytes + deadLetterHeadroom*min(deadLetter, 1)
	if size := encodedSize(m); size > limit {
		return fmt.Errorf("gcppubsub: message is %d bytes encoded (payload %d), over the limit of %d: %w", size, len(m.Payload), limit, driver.ErrMessageTooLarge)
	}
	return nil
}

func isTransportAttr(k string) bool {
	for _, a := range transportAttrs {
		if k == a {
			return true
		}
	}
	return false
}

// encodedSize is the size Pub/Sub and its client measure: the encoded
// PubsubMessage with data, attributes (metadata and the ID) and ordering
// key, as proto.Size would report it, computed without building the message.
// A message without an ID yet is measured with the 32-byte ID Publish will
// give it; a dead-letter reason as attributes will cut it.
func encodedSize(m *driver.Message) int {
	idLen := len(m.ID)
	if m.ID == "" {
		idLen = 32
	}
	n := bytesField(len(m.Payload)) + bytesField(len(m.Key)) + mapEntry(len(attrID), idLen)
	for k, v := range m.Metadata {
		if k == driver.MetadataDeadLetterReason {
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
func attributes(m *driver.Message) map[string]string {
	attrs := make(map[string]string, len(m.Metadata)+1)
	for k, v := range m.Metadata {
		attrs[k] = v
	}
	if r, ok := attrs[driver.MetadataDeadLetterReason]; ok {
		attrs[driver.MetadataDeadLetterReason] = truncateUTF8(strings.ToValidUTF8(r, "\uFFFD"), maxAttrValueBytes)
	}
	attrs[attrID] = m.ID
	return attrs
}

// encode returns the Pub/Sub message for m, which has passed checkMessage
// and has an ID.
func encode(m *driver.Message) *gpubsub.Message {
	return &gpubsub.Message{Data: m.Payload, Attributes: attributes(m), OrderingKey: m.Key}
}

// handBack says where a message goes back to a topic for one group alone:
// the group (targetValue), the Attempt of its next delivery, and until when
// it waits out its backoff.
type handBack struct {
	to        string
	attempt   int
	notBefore time.Time
}

// encodeFor returns the Pub/Sub message for m sent back to one group of its
// topic as h says.
func encodeFor(m *driver.Message, h handBack) *gpubsub.Message {
	g := encode(m)
	g.Attributes[attrTo] = h.to
	if h.attempt > 1 {
		g.Attributes[attrAttempt] = strconv.Itoa(h.attempt)
	}
	if !h.notBefore.IsZero() {
		g.Attributes[attrNotBefore] = h.notBefore.UTC().Format(time.RFC3339Nano)
	}
	return g
}

// received is what a Pub/Sub message carries for the transport.
type received struct {
	msg *driver.Message // without Attempt
	// base is the Attempt of the message's first delivery: 1, or what a
	// hand-back set (attrAttempt).
	base int
	// notBefore, when not zero, is when the rest of a handed-back message's
	// backoff ends.
	notBefore time.Time
}

// decode returns what m carries. Messages published by other clients,
// without the ID attribute, get Pub/Sub's message ID.
func decode(m *gpubsub.Message) received {
	return decodeParts(m.ID, m.OrderingKey, m.Attributes, m.Data)
}

func decodeParts(pubsubID, key string, attrs map[string]string, data []byte) received {
	out := &driver.Message{ID: pubsubID, Key: key, Metadata: make(map[string]string, len(attrs)), Payload: data}
	r := received{msg: out, base: 1}
	for k, v := range attrs {
		switch k {
		case attrID:
			if v != "" {
				out.ID = v
			}
		case attrAttempt:
			if n, err := strconv.Atoi(v); err == nil && n > 1 {
				r.base = n
			}
		case attrNotBefore:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				r.notBefore = t
			}
		case attrTo:
		default:
			out.Metadata[k] = v
		}
	}
	return r
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
