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
	// sep joins a topic and a group, and a group and the dead-letter
	// suffix, in resource IDs. Switchyard names never contain '+', so the
	// joined names are injective: "a.b"+"c" and "a"+"b.c" stay apart.
	sep = "+"
	// deadLetterSuffix ends the IDs of a group's dead-letter topic and
	// subscription.
	deadLetterSuffix = sep + "dl"
)

// resourceID returns the Pub/Sub resource ID for name, a valid Switchyard
// name (pubsub.ValidateTopic) or names joined by sep. Names that Pub/Sub
// accepts are used unchanged; the others are mapped (see "Topic mapping" in
// the package documentation):
//
//   - a name that does not start with a letter, is shorter than 3 bytes, or
//     starts with "goog" (in any case) gets the prefix "sy~";
//   - an ID longer than 255 bytes is cut to 238 bytes followed by '~' and 16
//     hex digits of the SHA-256 of the whole name.
//
// The mapping is deterministic, so every process finds the same resource,
// and injective: unmapped IDs contain no '~', an ID with the prefix has its
// only other '~' (if any) at byte 238, and shortened IDs differ by their
// hash.
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

// topicID returns the Pub/Sub topic ID of a Switchyard topic.
func topicID(topic string) string { return resourceID(topic) }

// groupID returns the Pub/Sub subscription ID of group of topic:
// "<topic>+<group>", mapped as resourceID does.
func groupID(topic, group string) string { return resourceID(topic + sep + group) }

// deadLetterID returns the ID of the dead-letter topic of group of topic,
// which is also the ID of the subscription on it that keeps the group's dead
// letters: "<topic>+<group>+dl", mapped as resourceID does. Source topic IDs
// have no '+' and group IDs one, so it meets neither.
func deadLetterID(topic, group string) string {
	return resourceID(topic + sep + group + deadLetterSuffix)
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// topicPath and subscriptionPath return full resource names, as errors and
// the admin API use them.
func topicPath(project, topicID string) string { return "projects/" + project + "/topics/" + topicID }

func subscriptionPath(project, subID string) string {
	return "projects/" + project + "/subscriptions/" + subID
}

// maxFilterBytes is Pub/Sub's limit on a subscription filter.
const maxFilterBytes = 256

// targetValue returns the value of the attrTo attribute that sends a message
// to group alone: the group name, or, when the filter would not fit Pub/Sub's
// 256 bytes with it (names over 180 bytes), '~' and 32 hex digits of its
// SHA-256 (names never contain '~', so the two forms cannot meet).
func targetValue(group string) string {
	if len(group) <= 180 {
		return group
	}
	sum := sha256.Sum256([]byte(group))
	return "~" + hex.EncodeToString(sum[:16])
}

// groupFilter returns the filter of group's subscription: it takes every
// message except those sent to one other group of the topic (replayed dead
// letters and messages handed back untouched, which carry attrTo). Pub/Sub
// cannot change a subscription's filter after it was created.
func groupFilter(group string) string {
	return "NOT attributes:" + attrTo + " OR attributes." + attrTo + ` = "` + targetValue(group) + `"`
}
