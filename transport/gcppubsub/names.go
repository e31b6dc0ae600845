package gcppubsub

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Pub/Sub resource ID rules (topics and subscriptions alike): 3 to 255
// characters of letters, digits and "-_.~+%", starting with a letter, and not
// starting with "goog".
const (
	minIDLength = 3
	maxIDLength = 255
	// mappedPrefix starts the ID of a name that Pub/Sub cannot take as it
	// is. Switchyard names never contain '~', so a mapped ID cannot equal
	// the ID of another, unmapped name.
	mappedPrefix = "sy~"
	// pingTopicID is the topic Ping asks about. No Switchyard name maps to
	// it: "ping" needs no mapping, so only it, not "sy~ping", is used.
	pingTopicID = mappedPrefix + "ping"
)

// resourceID returns the Pub/Sub resource ID for name, which must already be
// a valid Switchyard name (pubsub.ValidateTopic) or two of them joined by
// '.'. Names that Pub/Sub accepts are used unchanged; the others are mapped
// (see "Topic mapping" in the package documentation):
//
//   - a name that does not start with a letter, is shorter than 3 bytes, or
//     starts with "goog" (in any case) gets the prefix "sy~";
//   - an ID longer than 255 bytes is cut to 238 bytes followed by '~' and 16
//     hex digits of the SHA-256 of the whole name.
//
// The mapping is deterministic, so every process finds the same resource,
// and injective in practice: unmapped IDs contain no '~'.
func resourceID(name string) string {
	id := name
	if len(id) < minIDLength || !isLetter(id[0]) || strings.HasPrefix(strings.ToLower(id), "goog") {
		id = mappedPrefix + id
	}
	if len(id) > maxIDLength {
		sum := sha256.Sum256([]byte(name))
		id = id[:maxIDLength-17] + "~" + hex.EncodeToString(sum[:8])
	}
	return id
}

// subscriptionID returns the Pub/Sub subscription ID of group on topic:
// "<topic>.<group>", mapped as resourceID does.
func subscriptionID(topic, group string) string { return resourceID(topic + "." + group) }

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// topicPath and subscriptionPath return full resource names, as errors and
// the admin API use them.
func topicPath(project, topicID string) string { return "projects/" + project + "/topics/" + topicID }

func subscriptionPath(project, subID string) string {
	return "projects/" + project + "/subscriptions/" + subID
}
