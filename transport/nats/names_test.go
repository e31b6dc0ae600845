package nats

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

func TestEncode(t *testing.T) {
	for in, want := range map[string]string{
		"orders":            "orders",
		"orders.created":    "orders_created",
		"order-service":     "order--service",
		"snake_case":        "snake-_case",
		"a.b_c-d":           "a_b-_c--d",
		"._-":               "_-_--",
		"Mixed.Case09":      "Mixed_Case09",
		"retry.100":         "retry_100",
		"dlq.a":             "dlq_a",
		"x-own":             "x--own",
		"deadletters":       "deadletters",
		"sytest-T-1a2b3c4d": "sytest--T--1a2b3c4d",
	} {
		assert.Equal(t, want, encode(in), in)
	}
}

// Names that differ map to objects and subjects that differ, across
// topics, groups, the own consumers and the dead-letter stream.
func TestNamesAreInjective(t *testing.T) {
	n := names{ns: "switchyard"}
	tokens := []string{"a", "b", "c", "a.b", "b.c", "a_b", "a-b", "a--b", "a-_b", "_", "-", ".", "-own", "own", "x-own", "dead", "deadletters", "-deadletters", "h", "-h"}
	type pair struct{ topic, group string }
	var pairs []pair
	for _, t1 := range tokens {
		for _, t2 := range tokens {
			pairs = append(pairs, pair{t1, t2}, pair{t1 + "." + t2, "g"}, pair{t1, t2 + ".g"})
		}
	}
	// Each kind of object must be injective, and kinds that share a name
	// space must not meet.
	streams := map[string]string{n.deadLetterStream(): "dead-letter stream"}
	consumers := map[string]string{} // per stream
	subjects := map[string]string{}
	for _, p := range pairs {
		if validateTopic(p.topic) != nil || pubsub.ValidateTopic(p.topic) != nil || pubsub.ValidateGroup(p.group) != nil {
			continue
		}
		claim := func(space map[string]string, key, what string) {
			if prev, ok := space[key]; ok && prev != what {
				t.Errorf("%q is both %s and %s", key, prev, what)
			}
			space[key] = what
		}
		s := n.stream(p.topic)
		claim(streams, s, "stream of "+p.topic)
		claim(consumers, s+"/"+consumerName(p.group), "group "+p.group+" of "+p.topic)
		claim(consumers, s+"/"+ownConsumerName(p.group), "own consumer of group "+p.group+" of "+p.topic)
		claim(subjects, n.topicSubject(p.topic), "topic "+p.topic)
		claim(subjects, n.groupSubject(p.topic, p.group), "group subject of "+p.group+" of "+p.topic)
		claim(subjects, n.deadLetterSubject(p.topic, p.group), "dead letters of "+p.group+" of "+p.topic)
	}
	assert.Greater(t, len(consumers), 1000)
	// The example from DESIGN line 1.
	assert.NotEqual(t, n.groupSubject("a", "b.c"), n.groupSubject("a.b", "c"))
	assert.NotEqual(t, n.deadLetterSubject("a", "b.c"), n.deadLetterSubject("a.b", "c"))
	assert.NotEqual(t, n.stream("a"), n.stream("a.b"))
	assert.NotEqual(t, consumerName("b.c"), consumerName("b_c"))
}

func TestLongNamesAreShortenedInjectively(t *testing.T) {
	n := names{ns: "switchyard"}
	long := strings.Repeat("a-", pubsub.MaxNameLength/2) // 200 bytes, 300 encoded
	require.Len(t, long, pubsub.MaxNameLength)
	other := strings.Repeat("a-", pubsub.MaxNameLength/2-1) + "ab"
	for _, name := range []string{n.stream(long), consumerName(long), ownConsumerName(long)} {
		assert.LessOrEqual(t, len(name), 255, name)
		assert.Contains(t, name, hashSuffix)
	}
	assert.NotEqual(t, n.stream(long), n.stream(other))
	assert.NotEqual(t, consumerName(long), consumerName(other))
	assert.Equal(t, consumerName(long)+ownSuffix, ownConsumerName(long))
	// The cut never splits an escape: what precedes "-h" is a whole code.
	for _, s := range []string{strings.Repeat("-", 300), "x" + strings.Repeat("-", 299), strings.Repeat("_", 150)} {
		got := limit(encode(s), 100)
		assert.LessOrEqual(t, len(got), 100)
		prefix := got[:strings.LastIndex(got, hashSuffix)]
		dashes := len(prefix) - len(strings.TrimRight(prefix, "-"))
		assert.Zero(t, dashes%2, "%q ends inside an escape", prefix)
	}
	assert.Equal(t, "short", limit("short", 100))
}

func TestValidateTopic(t *testing.T) {
	for _, bad := range []string{".a", "a.", "a..b", "."} {
		assert.ErrorIs(t, validateTopic(bad), pubsub.ErrInvalidTopic, bad)
	}
	for _, good := range []string{"a", "a.b", "a.b.c", "a-b_c", "_.-"} {
		assert.NoError(t, validateTopic(good), good)
	}
}

func TestValidNamespace(t *testing.T) {
	assert.True(t, validNamespace("switchyard"))
	assert.True(t, validNamespace("Prod2"))
	for _, bad := range []string{"", "a_b", "a-b", "a.b", strings.Repeat("a", 33), "é"} {
		assert.False(t, validNamespace(bad), bad)
	}
}
