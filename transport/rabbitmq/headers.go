package rabbitmq

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// headerString renders an AMQP header value as metadata text. Switchyard
// writes only strings; values of other field types, from other clients,
// get a portable form (see the package documentation):
//
//	string, byte array      as is
//	boolean                 true, false
//	integers                decimal: 42, -7
//	float, double           shortest decimal that reads back: 0.25, 1e+21
//	decimal                 decimal with its scale: {Scale 1, Value 5} is 0.5
//	timestamp               RFC 3339 in UTC: 2024-05-01T12:00:00Z
//	field table             JSON object, keys sorted
//	field array             JSON array
//	void                    the empty string
func headerString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	case amqp.Table, []any:
		b, err := json.Marshal(jsonValue(v))
		if err != nil {
			return "" // jsonValue gives only values that marshal
		}
		return string(b)
	}
	if s, ok := scalarString(v); ok {
		return s
	}
	return "" // not an AMQP field type
}

// scalarString renders the AMQP scalar field types other than strings.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v), true
	case int8:
		return strconv.FormatInt(int64(v), 10), true
	case int16:
		return strconv.FormatInt(int64(v), 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case uint8:
		return strconv.FormatUint(uint64(v), 10), true
	case uint16:
		return strconv.FormatUint(uint64(v), 10), true
	case uint32:
		return strconv.FormatUint(uint64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case amqp.Decimal:
		return decimalString(v), true
	case time.Time:
		return v.UTC().Format(time.RFC3339), true
	}
	return "", false
}

// decimalString renders an AMQP decimal, Value·10^-Scale, in plain decimal
// notation: {1, 5} is "0.5", {2, -125} is "-1.25", {0, 42} is "42".
func decimalString(d amqp.Decimal) string {
	neg := d.Value < 0
	digits := strconv.FormatInt(int64(d.Value), 10)
	if neg {
		digits = digits[1:]
	}
	scale := int(d.Scale)
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// jsonValue converts an AMQP field value to one encoding/json renders as
// the package documentation says: tables as objects, arrays as arrays,
// numbers and booleans as JSON numbers and booleans (NaN and infinities,
// which JSON lacks, as strings), decimals as JSON numbers with their
// scale, strings and byte arrays as strings, timestamps as RFC 3339
// strings, void as null.
func jsonValue(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = jsonValue(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonValue(x)
		}
		return out
	case string, bool, nil:
		return v
	case []byte:
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return strconv.FormatFloat(float64(v), 'g', -1, 32)
		}
		return json.Number(strconv.FormatFloat(float64(v), 'g', -1, 32))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
	}
	if s, ok := scalarString(v); ok {
		return json.Number(s) // integers and decimals
	}
	return nil
}

// derivedIDPrefix starts the IDs derivedID gives.
const derivedIDPrefix = "amqp-"

// derivedID is the ID of a delivered message that has no message_id (one
// published by another client): "amqp-" and 32 hex digits of a SHA-256 of
// its content (body, properties other than message_id and expiration, and
// application headers), so that every delivery of the message, in every
// group, has the same ID. Two messages of equal content get equal IDs.
// The transport's copies of such a message (retries, hand-backs, dead
// letters) carry the ID as their message_id.
func derivedID(d *amqp.Delivery) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(d.ContentType)
	field(d.ContentEncoding)
	field(d.CorrelationId)
	field(d.ReplyTo)
	field(d.Type)
	field(d.UserId)
	field(d.AppId)
	field(strconv.Itoa(int(d.Priority)))
	if !d.Timestamp.IsZero() {
		field(d.Timestamp.UTC().Format(time.RFC3339))
	} else {
		field("")
	}
	keys := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		if !brokerHeaders[k] && k != headerAttempt {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k)
		field(headerString(d.Headers[k]))
	}
	field(string(d.Body))
	return derivedIDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}
