package main

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/pubsub"
)

// jsonMessage is a message as tail --json prints it and publish --json
// reads it: the payload is "payload" when it is valid UTF-8 and
// "payload_base64" otherwise, so any payload survives the round trip.
type jsonMessage struct {
	ID            string            `json:"id,omitempty"`
	Attempt       int               `json:"attempt,omitempty"`
	Key           string            `json:"key,omitempty"`
	Metadata      map[string]string `json:"metadata"`
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 *string           `json:"payload_base64,omitempty"`
}

// toJSON returns m as tail --json prints it.
func toJSON(m *pubsub.Message) jsonMessage {
	j := jsonMessage{ID: m.ID, Attempt: m.Attempt, Key: m.Key, Metadata: m.Metadata}
	if j.Metadata == nil {
		j.Metadata = map[string]string{}
	}
	setPayload(&j.Payload, &j.PayloadBase64, m.Payload)
	return j
}

// setPayload sets *text to p when it is valid UTF-8, else *b64 to its
// base64 (standard encoding, padded).
func setPayload(text, b64 **string, p []byte) {
	if utf8.Valid(p) {
		s := string(p)
		*text = &s
		return
	}
	s := base64.StdEncoding.EncodeToString(p)
	*b64 = &s
}

// payloadOf returns the payload j carries.
func (j jsonMessage) payloadOf() ([]byte, error) {
	switch {
	case j.Payload != nil && j.PayloadBase64 != nil:
		return nil, fmt.Errorf("both payload and payload_base64 given")
	case j.PayloadBase64 != nil:
		p, err := base64.StdEncoding.DecodeString(*j.PayloadBase64)
		if err != nil {
			return nil, fmt.Errorf("payload_base64: %w", err)
		}
		return p, nil
	case j.Payload != nil:
		return []byte(*j.Payload), nil
	}
	return []byte{}, nil
}

// isText reports whether p prints as one line of text: valid UTF-8 without
// control characters other than tab.
func isText(p []byte) bool {
	if !utf8.Valid(p) {
		return false
	}
	for _, r := range string(p) {
		if r != '\t' && unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// payloadText renders a payload for people on one line: as it is when it is
// one line of text, quoted (Go syntax) when it is UTF-8 with newlines or
// other control characters, else "base64:" and its base64.
func payloadText(p []byte) string {
	switch {
	case isText(p):
		return string(p)
	case utf8.Valid(p):
		return strconv.Quote(string(p))
	}
	return "base64:" + base64.StdEncoding.EncodeToString(p)
}

// field renders a key or metadata value for a line of text: quoted when it
// is empty or has spaces, '=', quotes or control characters.
func field(s string) string {
	if s == "" || strings.ContainsAny(s, " =\"'") || !isText([]byte(s)) {
		return strconv.Quote(s)
	}
	return s
}

// metadataText renders metadata as k=v pairs sorted by key, skipping
// Switchyard's reserved dead-letter keys when skipReserved.
func metadataText(md map[string]string, skipReserved bool) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if skipReserved && strings.HasPrefix(k, "switchyard-") {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(field(k) + "=" + field(md[k]))
	}
	return b.String()
}

// messageLine renders a delivered message on one line for tail.
func messageLine(m *pubsub.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s attempt=%d", m.ID, m.Attempt)
	if m.Key != "" {
		b.WriteString(" key=" + field(m.Key))
	}
	if md := metadataText(m.Metadata, false); md != "" {
		b.WriteString(" " + md)
	}
	b.WriteString(" | " + payloadText(m.Payload))
	return b.String()
}
