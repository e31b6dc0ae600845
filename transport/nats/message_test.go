package nats

import (
	"bytes"
	"strings"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Values that NATS headers cannot carry as they are are encoded, and every
// value comes back unchanged through nats.go's own header encoding.
func TestHeaderValuesSurviveTheWire(t *testing.T) {
	values := []string{
		"", "plain", "caf\u00e9 \u2713", " leading", "trailing\t", "line\nbreak", "cr\rlf", "\x00nul",
		"=?utf-8?b?aGk=?=", "=?looks encoded", "\xff\xfe not UTF-8", "a: b", "tab\tinside",
		strings.Repeat("long ", 100),
	}
	md := map[string]string{}
	for i, v := range values {
		md["k"+strings.Repeat("x", i)] = v
	}
	m := &driver.Message{ID: " id with spaces ", Key: "key\n", Metadata: md, Payload: []byte{0, 1}}
	nm := encodeMessage("s", m)
	// Through the wire format and nats.go's parser.
	raw := wire(t, nm)
	h, err := natsgo.DecodeHeadersMsg(raw)
	require.NoError(t, err)
	got := decodeMessage(h, nm.Data, func() string { return "fallback" })
	assert.Equal(t, m.ID, got.ID)
	assert.Equal(t, m.Key, got.Key)
	assert.Equal(t, md, got.Metadata)
	assert.Equal(t, m.Payload, got.Payload)
	for _, v := range values {
		assert.Equal(t, needsEncoding(v), encodeValue(v) != v, "%q", v)
	}
	assert.Equal(t, "plain", encodeValue("plain"), "plain values stay readable for other clients")
}

// wire returns the header block nats.go sends for m.
func wire(t *testing.T, m *natsgo.Msg) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	// nats.go's writer trims values and replaces line breaks; none may be
	// left to trim or replace.
	for _, vs := range m.Header {
		for _, v := range vs {
			require.Equal(t, strings.TrimSpace(v), v)
			require.NotContains(t, v, "\n")
		}
	}
	return b.Bytes()
}

func TestCopiesCarryIDAndAttempt(t *testing.T) {
	m := &driver.Message{ID: "id-1", Key: "k", Metadata: map[string]string{"a": "1"}}
	nm := encodeCopy("s", m, "copy-1", 3)
	assert.Equal(t, "copy-1", nm.Header.Get(HeaderMsgID))
	assert.Equal(t, "id-1", nm.Header.Get(HeaderID))
	assert.Equal(t, "3", nm.Header.Get(HeaderAttempt))
	assert.Equal(t, 3, baseAttempt(nm.Header))
	got := decodeMessage(nm.Header, nil, func() string { return "fallback" })
	assert.Equal(t, "id-1", got.ID)
	assert.Equal(t, map[string]string{"a": "1"}, got.Metadata, "reserved headers are not metadata")
	assert.Equal(t, 1, baseAttempt(natsgo.Header{}))
	assert.Equal(t, "fallback", decodeMessage(natsgo.Header{"x": {"y"}}, nil, func() string { return "fallback" }).ID)
}

func TestCheckMessage(t *testing.T) {
	ok := &driver.Message{ID: "id", Metadata: map[string]string{"content-type": "application/json", "switchyard-group": "g"}}
	assert.NoError(t, checkMessage(ok, 1000))
	for _, key := range []string{"has space", "a:b", "", "caf\u00e9", "Nats-Msg-Id", "nats-expected-stream", "X-Switchyard-Key", "x-switchyard-attempt"} {
		err := checkMessage(&driver.Message{Metadata: map[string]string{key: "v"}}, 1000)
		assert.ErrorIs(t, err, pubsub.ErrInvalidMessage, "%q", key)
	}
	// The limit counts payload and headers; an empty ID counts as the 32
	// bytes Publish will give it.
	m := &driver.Message{Key: "k", Metadata: map[string]string{"a": "b"}}
	size := len("NATS/1.0\r\n\r\n") + len("Nats-Msg-Id: \r\n") + 32 + len("x-switchyard-key: k\r\n") + len("a: b\r\n")
	m.Payload = make([]byte, 100-size)
	assert.NoError(t, checkMessage(m, 100), "exactly the limit")
	m.Payload = append(m.Payload, 0)
	err := checkMessage(m, 100)
	assert.ErrorIs(t, err, pubsub.ErrMessageTooLarge)
	assert.EqualError(t, err, "nats: message is 101 bytes with its headers, over the limit of 100 (max_message_bytes): pubsub: message too large")
}
