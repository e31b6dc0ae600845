package gcppubsub

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// pubsubID is Pub/Sub's rule for topic and subscription IDs (besides not
// starting with "goog").
var pubsubID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)

func assertValidID(t *testing.T, id string) {
	t.Helper()
	assert.Regexp(t, pubsubID, id)
	assert.False(t, strings.HasPrefix(strings.ToLower(id), "goog"), "%q starts with goog", id)
}

func TestResourceID(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"orders", "orders"},
		{"orders.billing", "orders.billing"},
		{"Orders_v2-eu.x", "Orders_v2-eu.x"},
		{"abc", "abc"},
		{"ab", "sy~ab"},
		{"a", "sy~a"},
		{"7days", "sy~7days"},
		{"_private", "sy~_private"},
		{"-x", "sy~-x"},
		{".hidden", "sy~.hidden"},
		{"google-events", "sy~google-events"},
		{"GOOGLE", "sy~GOOGLE"},
		{"goo", "goo"},
		{strings.Repeat("a", 255), strings.Repeat("a", 255)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resourceID(tc.name)
			assert.Equal(t, tc.want, got)
			assertValidID(t, got)
		})
	}
}

func TestResourceIDLongNames(t *testing.T) {
	topic := strings.Repeat("t", pubsub.MaxNameLength)
	a := groupID(topic, strings.Repeat("g", pubsub.MaxNameLength))
	b := groupID(topic, strings.Repeat("g", pubsub.MaxNameLength-1)+"h")
	require.Len(t, a, 255)
	require.Len(t, b, 255)
	assertValidID(t, a)
	assert.NotEqual(t, a, b, "names that differ only after byte 238 still map apart")
	assert.Equal(t, a[:238], b[:238], "the readable prefix is kept")
	assert.Equal(t, "~", a[238:239])
	assert.Equal(t, a, groupID(topic, strings.Repeat("g", pubsub.MaxNameLength)), "deterministic")

	// 256 bytes: just over the limit.
	assert.Len(t, resourceID(strings.Repeat("a", 256)), 255)
	// A short-name prefix that pushes an ID over 255 bytes is cut too.
	long := "9" + strings.Repeat("x", 253)
	assert.Len(t, resourceID(long), 255)
	assertValidID(t, resourceID(long))
}

// TestResourceIDAnyValidName: every valid Switchyard name maps to a valid
// Pub/Sub ID, and different names to different IDs.
func TestResourceIDAnyValidName(t *testing.T) {
	const alphabet = "abcXYZ019._-g"
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]string{}
	for range 5000 {
		n := 1 + r.IntN(12)
		if r.IntN(10) == 0 {
			n = 150 + r.IntN(pubsub.MaxNameLength-149)
		}
		var sb strings.Builder
		if r.IntN(5) == 0 {
			sb.WriteString("goog")
		}
		for sb.Len() < n {
			sb.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		name := sb.String()[:min(sb.Len(), pubsub.MaxNameLength)]
		require.NoError(t, pubsub.ValidateTopic(name))
		for _, id := range []string{topicID(name), groupID(name, name), deadLetterID(name, name)} {
			assertValidID(t, id)
		}
		id := resourceID(name)
		if prev, ok := seen[id]; ok {
			require.Equal(t, prev, name, "two names map to %q", id)
		}
		seen[id] = name
	}
}

// TestNamesAreInjective: no two (topic, group) pairs, and no group and a
// dead-letter resource, share a Pub/Sub ID, even where the old "<topic>.<group>"
// names collided.
func TestNamesAreInjective(t *testing.T) {
	type pair struct{ topic, group string }
	pairs := []pair{
		{"a.b", "c"}, {"a", "b.c"}, {"a", "b"}, {"a.b", "dl"}, {"a", "b.dl"},
		{"orders", "dlq"}, {"orders.dlq", "billing"}, {"orders", "dlq.billing"}, {"x", "y"}, {"x.y", "z"},
	}
	topics := map[string]string{}
	subs := map[string]string{}
	for _, p := range pairs {
		what := p.topic + " / " + p.group
		for id, owner := range map[string]string{topicID(p.topic): "topic " + p.topic, deadLetterID(p.topic, p.group): "dead letters of " + what} {
			if prev, ok := topics[id]; ok && prev != owner {
				t.Errorf("topic ID %q used by %s and %s", id, prev, owner)
			}
			topics[id] = owner
		}
		for id, owner := range map[string]string{groupID(p.topic, p.group): "group " + what, deadLetterID(p.topic, p.group): "dead letters of " + what} {
			if prev, ok := subs[id]; ok && prev != owner {
				t.Errorf("subscription ID %q used by %s and %s", id, prev, owner)
			}
			subs[id] = owner
		}
	}
	assert.Equal(t, "a.b+c", groupID("a.b", "c"))
	assert.Equal(t, "a+b.c", groupID("a", "b.c"))
	assert.Equal(t, "a+b.c+dl", deadLetterID("a", "b.c"))
	assert.Equal(t, "sy~7+g+dl", deadLetterID("7", "g"), "an ID Pub/Sub refuses is mapped")
}

// TestGroupFilter: a group's filter lets through messages without attrTo,
// and those with attrTo only for that group; it fits Pub/Sub's 256 bytes for
// every group name.
func TestGroupFilter(t *testing.T) {
	assert.Equal(t, `NOT attributes:switchyard-to OR attributes.switchyard-to = "billing"`, groupFilter("billing"))
	long := strings.Repeat("g", pubsub.MaxNameLength)
	for _, g := range []string{"b", strings.Repeat("g", 180), strings.Repeat("g", 181), long} {
		assert.LessOrEqual(t, len(groupFilter(g)), maxFilterBytes, "group of %d bytes", len(g))
	}
	assert.Equal(t, strings.Repeat("g", 180), targetValue(strings.Repeat("g", 180)))
	assert.Len(t, targetValue(long), 33)
	assert.NotEqual(t, targetValue(long), targetValue(long[:199]+"h"))
}

// TestPolicies: the dead-letter policy allows one delivery more than
// WithMaxAttempts, within Pub/Sub's 5 to 100; the retry policy is the
// backoff within Pub/Sub's 600s; on an emulator there are none.
func TestPolicies(t *testing.T) {
	b := &broker{}
	for _, tc := range []struct{ maxAttempts, want int }{
		{1, 5}, {3, 5}, {4, 5}, {5, 6}, {10, 11}, {99, 100}, {100, 100},
	} {
		p := b.policies(tc.maxAttempts, time.Second, time.Minute)
		assert.Equal(t, int32(tc.want), p.deadLetter.GetMaxDeliveryAttempts(), "WithMaxAttempts(%d)", tc.maxAttempts)
	}
	p := b.policies(5, 100*time.Millisecond, 30*time.Second)
	assert.Equal(t, 100*time.Millisecond, p.retry.GetMinimumBackoff().AsDuration())
	assert.Equal(t, 30*time.Second, p.retry.GetMaximumBackoff().AsDuration())
	p = b.policies(5, 20*time.Minute, time.Hour)
	assert.Equal(t, 600*time.Second, p.retry.GetMinimumBackoff().AsDuration())
	assert.Equal(t, 600*time.Second, p.retry.GetMaximumBackoff().AsDuration())

	b.emulator = true
	assert.Equal(t, subPolicies{}, b.policies(5, time.Second, time.Minute))
}
