package driver

import (
	"slices"
	"strings"
)

// Metadata keys the portable layer sets on dead letters (package pubsub
// exports them under the same names). Drivers read them, for example to
// route or filter a dead letter by its group.
const (
	MetadataDeadLetterReason = "switchyard-dead-letter-reason"
	MetadataDeadLetterTime   = "switchyard-dead-letter-time"
	MetadataOriginalTopic    = "switchyard-original-topic"
	MetadataGroup            = "switchyard-group"
	MetadataAttempts         = "switchyard-attempts"
)

// ReservedPrefix starts the metadata keys that Switchyard itself sets.
const ReservedPrefix = "switchyard-"

// deadLetterKeys are removed by Revive.
var deadLetterKeys = []string{
	MetadataDeadLetterReason, MetadataDeadLetterTime, MetadataOriginalTopic, MetadataGroup, MetadataAttempts,
}

// Revive returns the copy of dead letter dl that a replay sends back to its
// group: the same ID, key, payload and metadata, without the dead-letter
// metadata, and Attempt 1. The payload is shared with dl.
func Revive(dl *Message) *Message {
	m := &Message{ID: dl.ID, Key: dl.Key, Payload: dl.Payload, Attempt: 1}
	if len(dl.Metadata) > 0 {
		m.Metadata = make(map[string]string, len(dl.Metadata))
		for k, v := range dl.Metadata {
			if !slices.Contains(deadLetterKeys, k) {
				m.Metadata[k] = v
			}
		}
	}
	return m
}

// IsDeadLetterKey reports whether metadata key k is one the portable layer
// sets on dead letters.
func IsDeadLetterKey(k string) bool {
	return strings.HasPrefix(k, ReservedPrefix) && slices.Contains(deadLetterKeys, k)
}

// IDSet is the set of IDs given to ReplayDeadLetters or PurgeDeadLetters;
// the empty set matches every ID.
type IDSet map[string]bool

// NewIDSet returns the set of ids.
func NewIDSet(ids []string) IDSet {
	s := make(IDSet, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

// Match reports whether id is in the set, or the set is empty.
func (s IDSet) Match(id string) bool { return len(s) == 0 || s[id] }

// Size returns the number of bytes m occupies for size limits, as
// pubsub.Message.Size documents: payload, key, ID and every metadata key and
// value except the reserved "switchyard-" ones.
func Size(m *Message) int {
	n := len(m.Payload) + len(m.Key) + len(m.ID)
	for k, v := range m.Metadata {
		if !strings.HasPrefix(k, ReservedPrefix) {
			n += len(k) + len(v)
		}
	}
	return n
}
