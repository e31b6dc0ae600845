package nats

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	natsgo "github.com/nats-io/nats.go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Headers Switchyard sets on the NATS messages it publishes, besides one
// header per metadata entry.
const (
	// HeaderMsgID carries Message.ID on messages published to a topic; the
	// server drops a message whose ID it saw within the stream's duplicate
	// window.
	HeaderMsgID = natsgo.MsgIdHdr // "Nats-Msg-Id"
	// HeaderKey carries Message.Key when it is not empty.
	HeaderKey = "x-switchyard-key"
	// HeaderID carries Message.ID on the copies Switchyard publishes to a
	// group's own subject and on dead letters, whose Nats-Msg-Id is their
	// own.
	HeaderID = "x-switchyard-id"
	// HeaderAttempt carries, on a copy published to a group's own subject,
	// the Attempt of its first delivery.
	HeaderAttempt = "x-switchyard-attempt"
)

// reservedPrefixes start header names that metadata may not use.
var reservedPrefixes = []string{"nats-", "x-switchyard-"}

// Encoded header values are RFC 2047 encoded-words: base64 of the value's
// bytes between these.
const (
	encodedPrefix = "=?utf-8?b?"
	encodedSuffix = "?="
)

// needsEncoding reports whether header value v would not survive the trip
// as it is: NATS header values end at a line break, lose surrounding
// spaces and tabs, and should be text; values that look encoded are
// encoded too, so that decoding is unambiguous.
func needsEncoding(v string) bool {
	if v == "" {
		return false
	}
	if c := v[0]; c == ' ' || c == '\t' {
		return true
	}
	if c := v[len(v)-1]; c == ' ' || c == '\t' {
		return true
	}
	if strings.HasPrefix(v, "=?") || !utf8.ValidString(v) {
		return true
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// encodeValue returns v as a header value that decodeValue turns back
// into v.
func encodeValue(v string) string {
	if !needsEncoding(v) {
		return v
	}
	return encodedPrefix + base64.StdEncoding.EncodeToString([]byte(v)) + encodedSuffix
}

// decodeValue undoes encodeValue. A value that only looks encoded is
// returned as it is.
func decodeValue(v string) string {
	if !strings.HasPrefix(v, encodedPrefix) || !strings.HasSuffix(v, encodedSuffix) || len(v) < len(encodedPrefix)+len(encodedSuffix) {
		return v
	}
	b, err := base64.StdEncoding.DecodeString(v[len(encodedPrefix) : len(v)-len(encodedSuffix)])
	if err != nil {
		return v
	}
	return string(b)
}

// validHeaderKey reports whether nats.go can send k as a header name:
// printable ASCII without spaces and without "()/,:;<=>?@[\]{}.
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c > '~' || strings.IndexByte("\"()/,:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// reservedKey reports whether header name k is one metadata may not use.
func reservedKey(k string) bool {
	for _, p := range reservedPrefixes {
		if len(k) >= len(p) && strings.EqualFold(k[:len(p)], p) {
			return true
		}
	}
	return false
}

// checkMessage reports why m cannot travel as a NATS message of at most
// max bytes.
func checkMessage(m *driver.Message, max int) error {
	for k := range m.Metadata {
		if !validHeaderKey(k) {
			return fmt.Errorf("nats: metadata key %q cannot be a NATS header name (printable ASCII without spaces and without \"()/,:;<=>?@[\\]{}): %w", k, driver.ErrInvalidMessage)
		}
		if reservedKey(k) {
			return fmt.Errorf("nats: metadata key %q is reserved (no key may begin with Nats- or x-switchyard-): %w", k, driver.ErrInvalidMessage)
		}
	}
	id := m.ID
	if id == "" {
		id = strings.Repeat("0", 32) // the length of the ID Publish will set
	}
	n := len(m.Payload) + headerBlock(HeaderMsgID, id, HeaderKey, m.Key, m.Metadata)
	if n > max {
		return fmt.Errorf("nats: message is %d bytes with its headers, over the limit of %d (max_message_bytes): %w", n, max, driver.ErrMessageTooLarge)
	}
	return nil
}

// headerBlock returns the size of the header block that carries the ID
// under idKey, the key (when not empty) and md.
func headerBlock(idKey, id, keyKey, key string, md map[string]string) int {
	n := len("NATS/1.0\r\n\r\n") + headerLine(idKey, id)
	if key != "" {
		n += headerLine(keyKey, key)
	}
	for k, v := range md {
		n += headerLine(k, v)
	}
	return n
}

func headerLine(k, v string) int { return len(k) + len(": \r\n") + len(encodeValue(v)) }

// encodeMessage returns the NATS message that carries m to subject: ID in
// Nats-Msg-Id, key and metadata in headers, payload as data. m's payload is
// shared, not copied.
func encodeMessage(subject string, m *driver.Message) *natsgo.Msg {
	n := len(m.Metadata) + 1
	if m.Key != "" {
		n++
	}
	// One backing array for every value, each header a one-element slice
	// of it.
	vals := make([]string, 0, n)
	one := func(v string) []string {
		vals = append(vals, encodeValue(v))
		return vals[len(vals)-1 : len(vals) : len(vals)]
	}
	h := make(natsgo.Header, n)
	for k, v := range m.Metadata {
		h[k] = one(v)
	}
	h[HeaderMsgID] = one(m.ID)
	if m.Key != "" {
		h[HeaderKey] = one(m.Key)
	}
	return &natsgo.Msg{Subject: subject, Header: h, Data: m.Payload}
}

// encodeCopy returns the NATS message that carries m, delivered before, to
// subject as a copy: ID in x-switchyard-id, msgID (a deduplication ID of
// the copy's own) in Nats-Msg-Id, and attempt, when positive, in
// x-switchyard-attempt.
func encodeCopy(subject string, m *driver.Message, msgID string, attempt int) *natsgo.Msg {
	nm := encodeMessage(subject, m)
	nm.Header[HeaderID] = nm.Header[HeaderMsgID]
	nm.Header[HeaderMsgID] = []string{msgID}
	if attempt > 0 {
		nm.Header[HeaderAttempt] = []string{strconv.Itoa(attempt)}
	}
	return nm
}

// decodeMessage returns the message that NATS message headers h and
// payload data carry, with a copy of data. fallbackID gives its ID when
// the headers carry none (a message from another client).
func decodeMessage(h natsgo.Header, data []byte, fallbackID func() string) *driver.Message {
	m := &driver.Message{}
	if len(data) > 0 {
		m.Payload = append([]byte(nil), data...)
	}
	if v := first(h, HeaderID); v != "" {
		m.ID = decodeValue(v)
	} else if v := first(h, HeaderMsgID); v != "" {
		m.ID = decodeValue(v)
	} else {
		m.ID = fallbackID()
	}
	m.Key = decodeValue(first(h, HeaderKey))
	for k, vs := range h {
		if len(vs) == 0 || reservedKey(k) {
			continue
		}
		if m.Metadata == nil {
			m.Metadata = make(map[string]string, len(h))
		}
		m.Metadata[k] = decodeValue(vs[0])
	}
	return m
}

// baseAttempt returns the attempt a copy's first delivery has
// (x-switchyard-attempt), or 1.
func baseAttempt(h natsgo.Header) int {
	if v := first(h, HeaderAttempt); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return 1
}

func first(h natsgo.Header, k string) string {
	if vs := h[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
