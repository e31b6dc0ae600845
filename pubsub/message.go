package pubsub

import (
	"encoding/binary"
	"encoding/hex"
	"maps"
	"math/rand/v2"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Metadata keys that Switchyard sets on messages. Application metadata must
// not use the "switchyard-" prefix.
const (
	// MetadataDeadLetterReason holds, on a dead letter, the error text of
	// the handler's last failure (or the decode error of a typed topic),
	// cut to MaxDeadLetterReason bytes.
	MetadataDeadLetterReason = driver.MetadataDeadLetterReason
	// MetadataDeadLetterTime holds, on a dead letter, when it was
	// dead-lettered (RFC 3339 with nanoseconds, UTC).
	MetadataDeadLetterTime = driver.MetadataDeadLetterTime
	// MetadataOriginalTopic holds, on a dead letter, the topic of the
	// subscription that dead-lettered it.
	MetadataOriginalTopic = driver.MetadataOriginalTopic
	// MetadataGroup holds, on a dead letter, the consumer group whose
	// handler gave up on it.
	MetadataGroup = driver.MetadataGroup
	// MetadataAttempts holds, on a dead letter, how many times the group's
	// handlers ran it (decimal).
	MetadataAttempts = driver.MetadataAttempts
	// MetadataContentType holds the media type of the payload; typed topics
	// set it from their Codec (for example "application/json").
	MetadataContentType = "content-type"
)

// Message is the unit a topic carries.
//
// A Message is not safe for concurrent mutation. Publish reads it and sets ID
// when ID is empty; a handler owns the Message it is given for the duration of
// the call and may modify it without affecting other deliveries.
type Message struct {
	// ID identifies the message; it survives the trip unchanged and is the
	// same on every redelivery and on the dead letter. Publish sets a random
	// 128-bit hex ID when it is empty; a message that reaches a group from
	// another client without one gets the broker's ID or a new one.
	ID string
	// Key is an optional ordering key. Transports that support ordering
	// deliver messages of one key to a group one at a time, in publish order.
	Key string
	// Metadata holds headers. Keys beginning with "switchyard-" are reserved.
	// Handlers always get a non-nil map.
	Metadata map[string]string
	// Payload is opaque bytes; any byte sequence, including non-UTF-8, survives
	// the trip.
	Payload []byte
	// Attempt is set on delivery: 1 on the first delivery, then 1 plus the
	// handler runs of the group that failed (and at most one more for a run
	// cut off by a crash or by Shutdown's deadline). A message handed back
	// untouched, such as one fetched ahead but not handled when its
	// subscription closed, keeps its Attempt. A handler never sees an
	// Attempt above its subscription's WithMaxAttempts. Publish ignores it.
	Attempt int
}

// Messages convert to driver messages without copying; this fails to
// compile if the two types drift apart.
var _ = (*driver.Message)((*Message)(nil))

// NewMessage returns a message carrying payload, with a fresh ID and empty
// metadata. It does not copy payload.
func NewMessage(payload []byte) *Message {
	return &Message{ID: NewID(), Metadata: map[string]string{}, Payload: payload}
}

// NewID returns a random 128-bit identifier as 32 lowercase hex digits, as
// Publish assigns to messages without an ID. The bits come from math/rand/v2
// (ChaCha8, seeded by the operating system): unique in practice, not secret.
// It is safe for concurrent use.
func NewID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	var h [32]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// Clone returns a deep copy of m: Metadata and Payload are copied, so the copy
// may be modified freely.
func (m *Message) Clone() *Message {
	c := *m
	if m.Metadata != nil {
		c.Metadata = maps.Clone(m.Metadata)
	}
	if m.Payload != nil {
		c.Payload = append([]byte(nil), m.Payload...)
	}
	return &c
}

// Size returns the number of bytes the message occupies for size limits: the
// payload, the key, the ID and every metadata key and value except the
// reserved "switchyard-" ones. Leaving those out means that a message that
// was accepted can always be dead-lettered: the dead-letter metadata (at most
// MaxDeadLetterReason plus about 150 bytes) does not count against the limit,
// and transports keep that much headroom under their broker's own limit.
func (m *Message) Size() int { return driver.Size((*driver.Message)(m)) }
