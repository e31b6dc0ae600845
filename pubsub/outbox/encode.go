package outbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/pubsub"
)

// encoded is a message as an outbox row stores it.
type encoded struct {
	id, key  string
	metadata string // JSON object; "" for none
	payload  []byte
}

// encode validates msgs for topic and returns their rows, setting the ID of
// messages without one. Nothing is stored when it fails.
func encode(topic string, msgs []*pubsub.Message) ([]encoded, error) {
	if err := pubsub.ValidateTopic(topic); err != nil {
		return nil, err
	}
	rows := make([]encoded, len(msgs))
	for i, m := range msgs {
		bad := func(what string) error {
			return fmt.Errorf("outbox: message %d of %d to %s: %s: %w", i+1, len(msgs), topic, what, pubsub.ErrInvalidMessage)
		}
		if m == nil {
			return nil, bad("nil message")
		}
		if !text(m.ID) {
			return nil, bad("ID is not UTF-8 text without NUL")
		}
		if !text(m.Key) {
			return nil, bad("key is not UTF-8 text without NUL")
		}
		r := encoded{id: m.ID, key: m.Key, payload: m.Payload}
		if len(m.Metadata) > 0 {
			for k, v := range m.Metadata {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					return nil, bad(fmt.Sprintf("metadata %q is not UTF-8", k))
				}
			}
			b, err := json.Marshal(m.Metadata)
			if err != nil {
				return nil, bad(err.Error())
			}
			r.metadata = string(b)
		}
		if r.payload == nil {
			r.payload = []byte{}
		}
		rows[i] = r
	}
	for i, m := range msgs {
		if m.ID == "" {
			m.ID = pubsub.NewID()
			rows[i].id = m.ID
		}
	}
	return rows, nil
}

// text reports whether s can be stored in a TEXT column of every dialect
// and carried by every broker: UTF-8 without NUL.
func text(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// decode rebuilds the message of a row.
func decode(id, key, metadata string, payload []byte) (*pubsub.Message, error) {
	m := &pubsub.Message{ID: id, Key: key, Metadata: map[string]string{}, Payload: payload}
	if metadata != "" {
		if err := json.Unmarshal([]byte(metadata), &m.Metadata); err != nil {
			return nil, fmt.Errorf("outbox: metadata of message %s does not decode: %w", id, err)
		}
	}
	return m, nil
}
