package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestPublishInputs: lines from a file and stdin, JSON objects with
// defaults from --key and --meta, and input errors after some messages.
func TestPublishInputs(t *testing.T) {
	tg := memTarget()
	topic := newTopic()
	b := tg.openBroker(t)
	got := collectingGroup(t, b, topic, "g")
	next := func() *pubsub.Message { return recv(t, got) }

	file := filepath.Join(t.TempDir(), "msgs.txt")
	require.NoError(t, os.WriteFile(file, []byte("a\n\nb\r\nlast without newline"), 0o600))
	r := tg.run(t, "", "publish", topic, "--file", file)
	requireOK(t, r)
	ids := lines(r.stdout)
	require.Len(t, ids, 3, "empty lines are skipped")
	for i, want := range []string{"a", "b", "last without newline"} {
		m := next()
		assert.Equal(t, ids[i], m.ID)
		assert.Equal(t, want, string(m.Payload))
	}

	in := `{"payload": "one", "metadata": {"src": "own", "x": "1"}}
	{"payload": "two", "key": "own-key"} {"payload": ""}`
	r = tg.run(t, in, "publish", topic, "--json", "--key", "default-key", "--meta", "src=flag", "--meta", "env=test")
	requireOK(t, r)
	require.Len(t, lines(r.stdout), 3)
	m := next()
	assert.Equal(t, "one", string(m.Payload))
	assert.Equal(t, "default-key", m.Key)
	assert.Equal(t, map[string]string{"src": "own", "x": "1", "env": "test"}, m.Metadata, "a message's own metadata wins")
	m = next()
	assert.Equal(t, "own-key", m.Key)
	assert.Equal(t, map[string]string{"src": "flag", "env": "test"}, m.Metadata)
	m = next()
	assert.Empty(t, m.Payload, "an empty payload is possible with --json")

	r = tg.run(t, "{\"payload\": \"ok\"}\n{\"payload\": oops}\n", "publish", topic, "--json")
	assert.Equal(t, 1, r.code)
	require.Len(t, lines(r.stdout), 1, "the message before the error was published")
	assert.Contains(t, r.stderr, "switchyard: message 2: not a JSON message object")
	assert.Contains(t, r.stderr, "(the 1 messages before it were published)")
	assert.Equal(t, "ok", string(next().Payload))

	r = tg.run(t, "", "publish", topic, "--json", `{"payload": "x", "payload_base64": "eA=="}`)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "both payload and payload_base64 given")
	assert.Empty(t, r.stdout)
	quiet(t, got, "message")
}

// TestPublishChecksTopic: a topic that does not exist or has no group is
// refused unless --force; RabbitMQ tells only whether it exists.
func TestPublishChecksTopic(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		topic := newTopic()
		tg.cleanup(t, topic, "g")
		r := tg.run(t, "", "publish", topic, "x")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, fmt.Sprintf("switchyard: topic %s does not exist (create a group first: switchyard groups create %s GROUP; or give --force)\n", topic, topic), r.stderr)
		assert.Empty(t, r.stdout)

		r = tg.run(t, "", "publish", topic, "x", "--force")
		requireOK(t, r)
		assert.Len(t, lines(r.stdout), 1)

		r = tg.run(t, "", "publish", topic, "x")
		if tg.name == "amqp" {
			requireOK(t, r) // the exchange exists; AMQP cannot tell its groups
		} else {
			assert.Equal(t, 1, r.code, "the topic exists now, without a group")
			assert.Equal(t, fmt.Sprintf("switchyard: topic %s has no group, so no broker would keep the messages (create one: switchyard groups create %s GROUP; or give --force)\n", topic, topic), r.stderr)
		}

		requireOK(t, tg.run(t, "", "groups", "create", topic, "g"))
		requireOK(t, tg.run(t, "", "publish", topic, "x"))
	})
}
