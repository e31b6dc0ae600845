// Fuzz targets of the RabbitMQ transport's pure mappings (no broker).
//
//	FuzzParseURL     amqp:// and amqps:// URLs to Config: never panics; no
//	                 error shows the password (seeds: s3cr3t-PASS); an
//	                 accepted URL is not opaque, keeps its credentials and
//	                 host, validates, and parses again to the same URL.
//	FuzzHeaders      Message → AMQP publishing → delivery → Message: what
//	                 checkMessage accepts comes back equal (ID, Key,
//	                 Metadata, Payload, Attempt 1); the headers are valid
//	                 AMQP field tables.
//	FuzzHeaderValue  header values of every AMQP field type, as other
//	                 clients send them: rendered without panic, tables and
//	                 arrays as valid JSON, numbers that read back, derived
//	                 IDs stable.
//	FuzzNames        valid topic and group names map to exchange and queue
//	                 names AMQP and RabbitMQ accept (≤255 bytes, not
//	                 "amq."), and two different (topic, group) pairs never
//	                 share a queue.
//
// Seeds are the f.Add calls and the files in testdata/fuzz/<target>; plain
// `go test` runs them. To fuzz one target for minutes (one at a time):
//
//	go test -run '^$' -fuzz '^FuzzHeaders$' -fuzztime 5m -parallel 1 ./transport/rabbitmq
//
// Findings (60s each with -parallel 1 on 2 shared cores, December 2026):
// FuzzParseURL 167,222 executions, FuzzHeaders 284,615, FuzzHeaderValue
// 23,056, FuzzNames 194,518: nothing. An opaque URL (amqp:USER:PASS@HOST),
// which amqp091 read as guest@localhost:5672, was found by
// transport's TestOpenNeverShowsPassword and is now refused; FuzzParseURL
// asserts it (testdata/fuzz/FuzzParseURL/opaque-connects-to-localhost).
package rabbitmq

import (
	"encoding/json"
	"maps"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

const fuzzPassword = "s3cr3t-PASS"

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"amqp://guest:" + fuzzPassword + "@127.0.0.1:5672/",
		"amqps://guest:" + fuzzPassword + "@host:5671/vhost?prefetch=10&queue_type=classic",
		"amqp://guest:" + fuzzPassword + "@host/?prefetch=0&max_message_bytes=x&dead_letter_limit=-1",
		"amqp://guest:" + fuzzPassword + "@host/?confirm_timeout=1s&connect_timeout=bad&heartbeat=5",
		"amqp://guest:" + fuzzPassword + "@host:99999/", "amqp://guest:" + fuzzPassword + "@host:port/",
		"amqp://guest:" + fuzzPassword + "@host/?unknown=" + fuzzPassword, "amqp://guest:s3cr3t%2DPASS@host/%2f",
		"amqps://guest:" + fuzzPassword + "@host/?cacertfile=/nonexistent&server_name_indication=x",
		"amqp://guest:" + fuzzPassword + "@host/a/b", "amqp://:" + fuzzPassword + "@host/", "amqp://host",
		"amqp://guest:" + fuzzPassword + "@host/?prefetch=65536", "amqp://guest:" + fuzzPassword + "@host/?auth_mechanism=EXTERNAL",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
			return
		}
		c, err := parseURL(u)
		secret := ""
		if u.User != nil {
			if p, ok := u.User.Password(); ok && len(p) >= 6 && strings.Count(raw, p) <= 1 {
				secret = p
			}
		}
		if err != nil {
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Fatalf("parseURL(%q): error %q shows the password", raw, err)
			}
			return
		}
		if u.Opaque != "" {
			// amqp091 would connect to its default, guest@localhost:5672.
			t.Fatalf("parseURL(%q) accepted an opaque URL as %q", raw, c.URL)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parseURL(%q) accepted a Config that does not validate: %v", raw, err)
		}
		uri, err := amqp.ParseURI(c.URL)
		if err != nil {
			t.Fatalf("parseURL(%q): URL %q does not parse for amqp091: %v", raw, c.URL, err)
		}
		if p, ok := u.User.Password(); ok && uri.Password != p {
			t.Fatalf("parseURL(%q): password %q became %q", raw, p, uri.Password)
		}
		if u.User != nil && u.User.Username() != "" && uri.Username != u.User.Username() {
			t.Fatalf("parseURL(%q): user %q became %q", raw, u.User.Username(), uri.Username)
		}
		if u.Hostname() != "" && uri.Host != u.Hostname() {
			t.Fatalf("parseURL(%q): host %q became %q", raw, u.Hostname(), uri.Host)
		}
		u2, err := url.Parse(c.URL)
		if err != nil {
			t.Fatalf("parseURL(%q): URL %q does not parse: %v", raw, c.URL, err)
		}
		c2, err := parseURL(u2)
		if err != nil || c2.URL != c.URL {
			t.Fatalf("parseURL(%q) gave URL %q, which parses to %q, %v", raw, c.URL, c2.URL, err)
		}
	})
}

func FuzzHeaders(f *testing.F) {
	f.Add("id-1", "", "k", "v", "k2", "v2", []byte("payload"))
	f.Add("id", "order-7", pubsub.MetadataContentType, "application/json", pubsub.MetadataCEID, "id", []byte{0xff, 0})
	f.Add("id", "", pubsub.MetadataContentType, "", "ce-type", "t", []byte(nil))
	f.Add("id", "k", "cloudEvents:id", "x", "x-switchyard-key", "y", []byte("reserved"))
	f.Add("id", "k", "x-death", "x", "x-delivery-count", "3", []byte("reserved"))
	f.Add(strings.Repeat("i", 256), "", "", "", "", "", []byte(""))
	f.Add("id", "", strings.Repeat("k", 255), "v", "ce-"+strings.Repeat("k", 250), "v", []byte(""))
	f.Add("id", "\xff\x00", "\x00k\xff", "\r\n v \t", "Content-Type", "text/plain", []byte("x"))
	f.Fuzz(func(t *testing.T, id, key, k1, v1, k2, v2 string, payload []byte) {
		if id == "" {
			return // Publish sets an ID first
		}
		m := &driver.Message{ID: id, Key: key, Payload: payload, Metadata: map[string]string{k1: v1, k2: v2}}
		if err := checkMessage(m); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		p := toPublishing(m)
		if err := p.Headers.Validate(); err != nil {
			t.Fatalf("headers of %+v are not a valid AMQP table: %v", m, err)
		}
		if len(p.ContentType) > maxShortString || len(p.MessageId) > maxShortString {
			t.Fatalf("content_type or message_id over %d bytes", maxShortString)
		}
		for h := range p.Headers {
			if len(h) > maxShortString {
				t.Fatalf("header name of %d bytes", len(h))
			}
		}
		d := &amqp.Delivery{Headers: p.Headers, ContentType: p.ContentType, MessageId: p.MessageId, Body: p.Body, DeliveryMode: p.DeliveryMode}
		for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
			back := fromDelivery(d, qt)
			if back.ID != m.ID || back.Key != m.Key || string(back.Payload) != string(m.Payload) || back.Attempt != 1 {
				t.Fatalf("%s: sent ID %q key %q payload %q, got ID %q key %q payload %q attempt %d",
					qt, m.ID, m.Key, m.Payload, back.ID, back.Key, back.Payload, back.Attempt)
			}
			if !maps.Equal(back.Metadata, m.Metadata) {
				t.Fatalf("%s: sent metadata %q, got %q", qt, m.Metadata, back.Metadata)
			}
		}
	})
}

// headerValue builds an AMQP field value of the type kind selects.
func headerValue(kind uint8, i int64, fl float64, s string, scale uint8, depth int) any {
	switch kind % 16 {
	case 0:
		return s
	case 1:
		return []byte(s)
	case 2:
		return i%2 == 0
	case 3:
		return int8(i)
	case 4:
		return int16(i)
	case 5:
		return int32(i)
	case 6:
		return i
	case 7:
		return uint8(i)
	case 8:
		return float32(fl)
	case 9:
		return fl
	case 10:
		return amqp.Decimal{Scale: scale, Value: int32(i)}
	case 11:
		return time.Unix(i%(1<<35), 0)
	case 12:
		if depth > 2 {
			return nil
		}
		return amqp.Table{s: headerValue(kind/16, i, fl, s, scale, depth+1), "n": headerValue(uint8(i), i, fl, s, scale, depth+1)}
	case 13:
		if depth > 2 {
			return nil
		}
		return []any{headerValue(kind/16, i, fl, s, scale, depth+1), headerValue(uint8(i>>8), -i, fl, s, scale, depth+1)}
	case 14:
		return uint16(i)
	default:
		return nil
	}
}

var decimalRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

func FuzzHeaderValue(f *testing.F) {
	f.Add(uint8(10), int64(-125), 0.0, "", uint8(2))
	f.Add(uint8(10), int64(math.MinInt32), 0.0, "", uint8(255))
	f.Add(uint8(9), int64(0), math.NaN(), "", uint8(0))
	f.Add(uint8(8), int64(0), math.Inf(-1), "", uint8(0))
	f.Add(uint8(9), int64(0), 1e21, "", uint8(0))
	f.Add(uint8(12), int64(7), 0.25, "k\xff", uint8(1))
	f.Add(uint8(13+12*16), int64(-1), -0.0, "\"quoted\"", uint8(3))
	f.Add(uint8(11), int64(-62135596800), 0.0, "", uint8(0))
	f.Add(uint8(0), int64(0), 0.0, "text \r\n", uint8(0))
	f.Fuzz(func(t *testing.T, kind uint8, i int64, fl float64, s string, scale uint8) {
		v := headerValue(kind, i, fl, s, scale, 0)
		got := headerString(v)
		switch v := v.(type) {
		case amqp.Table, []any:
			if !json.Valid([]byte(got)) {
				t.Fatalf("headerString(%#v) = %q, not JSON", v, got)
			}
		case amqp.Decimal:
			if !decimalRE.MatchString(got) {
				t.Fatalf("headerString(%#v) = %q, not a decimal", v, got)
			}
			want := float64(v.Value) / math.Pow(10, float64(v.Scale))
			back, err := strconv.ParseFloat(got, 64)
			if err != nil || (back != want && math.Abs(back-want) > 1e-9*math.Abs(want)) {
				t.Fatalf("headerString(%#v) = %q, reads back as %v (%v), want %v", v, got, back, err, want)
			}
		case float64:
			back, err := strconv.ParseFloat(got, 64)
			if err != nil || !(back == v || math.IsNaN(v) && math.IsNaN(back)) {
				t.Fatalf("headerString(%v) = %q, reads back as %v, %v", v, got, back, err)
			}
		case int64:
			if got != strconv.FormatInt(v, 10) {
				t.Fatalf("headerString(%d) = %q", v, got)
			}
		case time.Time:
			back, err := time.Parse(time.RFC3339, got)
			if err != nil || !back.Equal(v) {
				t.Fatalf("headerString(%v) = %q, reads back as %v, %v", v, got, back, err)
			}
		}
		d := &amqp.Delivery{Body: []byte(s), Headers: amqp.Table{"h": v, "x-delivery-count": i}}
		id := derivedID(d)
		if !strings.HasPrefix(id, derivedIDPrefix) || len(id) != len(derivedIDPrefix)+32 || id != derivedID(d) {
			t.Fatalf("derivedID = %q, not stable or not of its form", id)
		}
		m := fromDelivery(d, QueueQuorum)
		if m.ID != id || m.Metadata["h"] != got || m.Attempt < 1 {
			t.Fatalf("fromDelivery: ID %q metadata %q attempt %d", m.ID, m.Metadata, m.Attempt)
		}
	})
}

func FuzzNames(f *testing.F) {
	f.Add("orders", "billing", "orders.eu", "billing")
	f.Add("a", "b.c", "a.b", "c")
	f.Add("amq.topic", "g", "t", "g")
	f.Add(strings.Repeat("t", 200), strings.Repeat("g", 200), strings.Repeat("t", 200), strings.Repeat("g", 199)+"h")
	f.Add("switchyard", "retry", "t", "dead")
	f.Fuzz(func(t *testing.T, t1, g1, t2, g2 string) {
		var b broker
		valid := func(topic, group string) bool {
			return pubsub.ValidateTopic(topic) == nil && pubsub.ValidateGroup(group) == nil && b.ValidateNames(topic, group) == nil
		}
		if !valid(t1, g1) || !valid(t2, g2) {
			return
		}
		objects := func(topic, group string) map[string]string {
			return map[string]string{
				"exchange":   exchangeName(topic),
				"queue":      groupQueueName(topic, group),
				"deadletter": deadQueueName(topic, group),
			}
		}
		o1, o2 := objects(t1, g1), objects(t2, g2)
		owner := map[string]string{}
		for _, qt := range []QueueType{QueueQuorum, QueueClassic} {
			for _, d := range []time.Duration{time.Millisecond, time.Second, maxRetryDelay} {
				owner[retryName(qt, retryBucket(d))] = "retry"
			}
		}
		for _, o := range []map[string]string{o1, o2} {
			for kind, n := range o {
				if n == "" || len(n) > maxNameBytes || strings.HasPrefix(n, "amq.") {
					t.Fatalf("%s name %q is not a name RabbitMQ takes", kind, n)
				}
			}
		}
		for kind, n := range o1 {
			if owner[n] == "retry" {
				t.Fatalf("%s %q of (%q, %q) is a retry queue's name", kind, n, t1, g1)
			}
			owner[n] = kind
		}
		for kind, n := range o2 {
			prev, ok := owner[n]
			same := prev == kind && (kind == "exchange" && t1 == t2 || t1 == t2 && g1 == g2)
			if ok && !same {
				t.Fatalf("%s %q of (%q, %q) is also the %s of (%q, %q)", kind, n, t2, g2, prev, t1, g1)
			}
		}
	})
}
