package pubsub_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/switchyard-go/switchyard/pubsub"
)

func TestNewMessageAndID(t *testing.T) {
	m := pubsub.NewMessage([]byte("p"))
	assert.Len(t, m.ID, 32)
	assert.NotNil(t, m.Metadata)
	assert.Equal(t, []byte("p"), m.Payload)
	seen := map[string]bool{}
	for range 1000 {
		id := pubsub.NewID()
		assert.Regexp(t, "^[0-9a-f]{32}$", id)
		assert.False(t, seen[id], "duplicate id")
		seen[id] = true
	}
}

func TestCloneIsDeep(t *testing.T) {
	m := &pubsub.Message{ID: "1", Key: "k", Metadata: map[string]string{"a": "b"}, Payload: []byte("xy"), Attempt: 2}
	c := m.Clone()
	assert.Equal(t, m, c)
	c.Metadata["a"] = "changed"
	c.Payload[0] = 'z'
	assert.Equal(t, "b", m.Metadata["a"])
	assert.Equal(t, []byte("xy"), m.Payload)
	assert.Nil(t, (&pubsub.Message{}).Clone().Metadata)
}

func TestSize(t *testing.T) {
	m := &pubsub.Message{ID: "123", Key: "kk", Metadata: map[string]string{"ab": "cde", pubsub.MetadataDeadLetterReason: "long reason"}, Payload: make([]byte, 10)}
	assert.Equal(t, 3+2+5+10, m.Size(), "dead-letter metadata does not count")
}
