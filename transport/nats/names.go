package nats

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// maxObjectName is the longest stream or consumer name this package makes:
// the server allows 255 bytes, and the group's own consumer adds
// ownSuffix to its group's name.
const maxObjectName = 255 - len(ownSuffix)

// Suffixes that mark the objects Switchyard adds beside a group's consumer.
// Each starts with '-' followed by a letter, which encode never produces
// (it writes '-' only as "--" or "-_"), so no group's name can end in one.
const (
	ownSuffix       = "-own"
	hashSuffix      = "-h"
	deadStreamInfix = "-deadletters"
)

// names maps topics and groups to JetStream streams, consumers and
// subjects in one namespace. See the package documentation, "Topic
// mapping", for the scheme and why it is injective.
type names struct {
	ns string // letters and digits only
}

// encode maps a Switchyard name ([A-Za-z0-9._-]) to the characters NATS
// recommends for stream and consumer names ([A-Za-z0-9_-]), injectively:
// letters and digits stay, '.' becomes '_', '_' becomes "-_" and '-'
// becomes "--". No code is a prefix of another, so decoding from the left
// is unambiguous and two names never share an encoding.
func encode(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '.':
			b.WriteByte('_')
		case '_':
			b.WriteString("-_")
		case '-':
			b.WriteString("--")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// limit returns s, an encoding, when it fits in max bytes; otherwise its
// first bytes, cut at a whole code, followed by "-h" and 16 hex digits of
// the SHA-256 of s. "-h" never follows a whole code in an encoding, so a
// shortened name cannot equal a name that was not shortened.
func limit(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	tail := hashSuffix + hex.EncodeToString(sum[:8])
	cut := max - len(tail)
	// Back off to the end of a whole code: an odd run of '-' before the cut
	// means the last '-' opens an escape whose second byte was cut off.
	dashes := 0
	for i := cut - 1; i >= 0 && s[i] == '-'; i-- {
		dashes++
	}
	if dashes%2 == 1 {
		cut--
	}
	return s[:cut] + tail
}

// stream is the name of topic's stream.
func (n names) stream(topic string) string {
	return limit(n.ns+"_"+encode(topic), maxObjectName)
}

// deadLetterStream is the name of the namespace's dead-letter stream.
func (n names) deadLetterStream() string { return n.ns + deadStreamInfix }

// topicSubject is the subject that publishing to topic sends to, and the
// main consumer of each of its groups filters on.
func (n names) topicSubject(topic string) string { return n.ns + "." + topic }

// groupSubject is the subject of group's own messages (releases,
// redeliveries with a new attempt count, replayed dead letters), which only
// that group's second consumer reads.
func (n names) groupSubject(topic, group string) string {
	return n.ns + "_group." + topic + "." + encode(group)
}

// groupSubjects matches the group subjects of every group of topic.
func (n names) groupSubjects(topic string) string { return n.ns + "_group." + topic + ".*" }

// deadLetterSubject is the subject of group's dead letters in the
// dead-letter stream.
func (n names) deadLetterSubject(topic, group string) string {
	return n.ns + "_dead." + topic + "." + encode(group)
}

// deadLetterSubjects matches every dead-letter subject of the namespace.
func (n names) deadLetterSubjects() string { return n.ns + "_dead.>" }

// consumer is the durable name of group's main consumer, in its topic's
// stream.
func consumerName(group string) string { return limit(encode(group), maxObjectName) }

// ownConsumerName is the durable name of the consumer of group's own
// subject.
func ownConsumerName(group string) string { return consumerName(group) + ownSuffix }

// validateTopic reports why topic cannot be a sequence of NATS subject
// tokens: a '.' at either end or two in a row make an empty token.
func validateTopic(topic string) error {
	if strings.HasPrefix(topic, ".") || strings.HasSuffix(topic, ".") || strings.Contains(topic, "..") {
		return fmt.Errorf("nats: topic %q has an empty subject token (a '.' at either end or two in a row): %w", topic, driver.ErrInvalidTopic)
	}
	return nil
}

// validNamespace reports whether ns can be a namespace: 1 to 32 ASCII
// letters and digits.
func validNamespace(ns string) bool {
	if ns == "" || len(ns) > 32 {
		return false
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
