// Fuzz targets of the Pub/Sub transport's pure mappings (no emulator).
//
//	FuzzParseURL   gcppubsub:// URLs to Config: never panics; no error
//	               shows a password; an accepted URL names its project.
//	FuzzAttributes Message → Pub/Sub message → protobuf wire → Message:
//	               what checkMessage accepts comes back equal (ID, Key,
//	               Metadata, Payload), and encodedSize is exactly the
//	               protobuf size Pub/Sub measures.
//	FuzzNames      valid topic and group names map to resource IDs Pub/Sub
//	               accepts (3 to 255 bytes of letters, digits and "-_.~+%",
//	               starting with a letter, not "goog"), with filters that
//	               fit 256 bytes, and distinct (topic, group) pairs never
//	               share a topic or subscription.
//
// Seeds are the f.Add calls and the files in testdata/fuzz/<target>; plain
// `go test` runs them. To fuzz one target for minutes (one at a time):
//
//	go test -run '^$' -fuzz '^FuzzAttributes$' -fuzztime 5m -parallel 1 ./transport/gcppubsub
//
// Findings (60s each with -parallel 1 on 2 shared cores, December 2026):
// FuzzParseURL 88,981 executions, FuzzAttributes 38,016, FuzzNames 104,189:
// nothing. An opaque URL (gcppubsub:USER:PASS@PROJECT) put its password in
// the error; it was found with the seeds of transport's FuzzOpen and fixed
// (testdata/fuzz/FuzzParseURL/gcppubsub-opaque-password).
package gcppubsub

import (
	"maps"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

const fuzzPassword = "s3cr3t-PASS"

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"gcppubsub://project", "gcppubsub://my-project?create=false&ordering=true&max_message_bytes=1000",
		"gcppubsub://p?ack_deadline=x&streams=-1&dead_letter_retention=1h", "gcppubsub://u:" + fuzzPassword + "@project",
		"gcppubsub://project/path", "gcppubsub://", "gcppubsub://bad_project!", "gcppubsub:opaque",
		"gcppubsub://project?unknown=1", "gcppubsub://" + fuzzPassword + "@project", "gcppubsub://goog-project",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "gcppubsub" {
			return
		}
		c, err := parseURL(u)
		if err != nil {
			msg := err.Error()
			head, _, _ := strings.Cut(raw, "?")
			head, _, _ = strings.Cut(head, "#")
			if at := strings.LastIndex(head, "@"); at > 0 {
				// Whatever stands before an '@' outside the query may be
				// a password.
				if p := passwordBefore(head[:at]); len(p) >= 6 && strings.Count(raw, p) == 1 && strings.Contains(msg, p) {
					t.Fatalf("parseURL(%q): error %q shows %q", raw, msg, p)
				}
			}
			return
		}
		if u.User != nil {
			t.Fatalf("parseURL(%q) accepted user information", raw)
		}
		if c.ProjectID != u.Host {
			t.Fatalf("parseURL(%q): project %q", raw, c.ProjectID)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parseURL(%q) accepted a Config that does not validate: %v", raw, err)
		}
	})
}

// passwordBefore returns what follows the last ':' of s, the place of a
// password in USER:PASSWORD.
func passwordBefore(s string) string {
	if i := strings.LastIndex(s, ":"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func FuzzAttributes(f *testing.F) {
	f.Add("id-1", "", "k", "v", "k2", "v2", []byte("payload"))
	f.Add("id", "order-7", pubsub.MetadataContentType, "application/json", pubsub.MetadataCEID, "id", []byte{0xff, 0})
	f.Add("id", "", "switchyard-id", "x", "googx", "y", []byte(nil))
	f.Add("id", "", driver.MetadataDeadLetterReason, strings.Repeat("é", 600)+"\xff", driver.MetadataOriginalTopic, "t", []byte("dl"))
	f.Add("", "", "", "", "k", "", []byte(""))
	f.Add(strings.Repeat("i", 1024), strings.Repeat("k", 1024), strings.Repeat("k", 256), strings.Repeat("v", 1024), "x", "\xff", []byte("x"))
	f.Fuzz(func(t *testing.T, id, key, k1, v1, k2, v2 string, payload []byte) {
		if id == "" {
			return // Publish sets an ID first
		}
		m := &driver.Message{ID: id, Key: key, Payload: payload, Metadata: map[string]string{k1: v1, k2: v2}}
		if err := checkMessage(m, DefaultMaxMessageBytes); err != nil {
			return
		}
		g := encode(m)
		pb := &pubsubpb.PubsubMessage{Data: g.Data, Attributes: g.Attributes, OrderingKey: g.OrderingKey}
		if got, want := encodedSize(m), proto.Size(pb); got != want {
			t.Fatalf("encodedSize = %d, protobuf size %d", got, want)
		}
		for k, v := range pb.Attributes {
			if k == "" || len(k) > maxAttrKeyBytes || len(v) > maxAttrValueBytes {
				t.Fatalf("attribute %q=%q breaks Pub/Sub's limits", k, v)
			}
		}
		wire, err := proto.Marshal(pb)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back pubsubpb.PubsubMessage
		if err := proto.Unmarshal(wire, &back); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		r := decodeParts("pubsub-id", back.OrderingKey, back.Attributes, back.Data)
		want := maps.Clone(m.Metadata)
		if reason, ok := want[driver.MetadataDeadLetterReason]; ok {
			want[driver.MetadataDeadLetterReason] = truncateUTF8(strings.ToValidUTF8(reason, "\uFFFD"), maxAttrValueBytes)
		}
		if r.msg.ID != m.ID || r.msg.Key != m.Key || string(r.msg.Payload) != string(m.Payload) || r.base != 1 || !r.notBefore.IsZero() {
			t.Fatalf("sent ID %q key %q payload %q, got ID %q key %q payload %q base %d", m.ID, m.Key, m.Payload, r.msg.ID, r.msg.Key, r.msg.Payload, r.base)
		}
		if !maps.Equal(r.msg.Metadata, want) {
			t.Fatalf("sent metadata %q, got %q", want, r.msg.Metadata)
		}
	})
}

var resourceIDRE = regexp.MustCompile(`^[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$`)

func FuzzNames(f *testing.F) {
	f.Add("orders", "billing", "orders.eu", "billing")
	f.Add("a", "b.c", "a.b", "c")
	f.Add("goog", "g", "GOOGle", "g")
	f.Add("1", "_", "sy", "-")
	f.Add(strings.Repeat("t", 200), strings.Repeat("g", 200), strings.Repeat("t", 200), strings.Repeat("g", 199)+"h")
	f.Add("ping", "g", "t", "dl")
	f.Fuzz(func(t *testing.T, t1, g1, t2, g2 string) {
		valid := func(topic, group string) bool {
			return pubsub.ValidateTopic(topic) == nil && pubsub.ValidateGroup(group) == nil
		}
		if !valid(t1, g1) || !valid(t2, g2) {
			return
		}
		objects := func(topic, group string) map[string]string {
			return map[string]string{"topic": topicID(topic), "subscription": groupID(topic, group), "deadletter": deadLetterID(topic, group)}
		}
		o1, o2 := objects(t1, g1), objects(t2, g2)
		for _, o := range []map[string]string{o1, o2} {
			for kind, id := range o {
				if !resourceIDRE.MatchString(id) || strings.HasPrefix(strings.ToLower(id), "goog") || id == pingTopicID {
					t.Fatalf("%s ID %q is not one Pub/Sub takes", kind, id)
				}
			}
		}
		for _, g := range []string{g1, g2} {
			if n := len(groupFilter(g)); n > maxFilterBytes {
				t.Fatalf("filter of group %q is %d bytes", g, n)
			}
		}
		// Topics and dead-letter topics share a namespace; subscriptions and
		// dead-letter subscriptions (same IDs as dead-letter topics) another.
		for _, pair := range [][2]string{{"topic", "deadletter"}, {"subscription", "deadletter"}} {
			owner := map[string]string{}
			for _, kind := range pair {
				owner[o1[kind]] = kind
			}
			for _, kind := range pair {
				prev, ok := owner[o2[kind]]
				same := prev == kind && (kind == "topic" && t1 == t2 || t1 == t2 && g1 == g2)
				if ok && !same {
					t.Fatalf("%s %q of (%q, %q) is also the %s of (%q, %q)", kind, o2[kind], t2, g2, prev, t1, g1)
				}
			}
		}
		if targetValue(g1) == targetValue(g2) && g1 != g2 {
			t.Fatalf("groups %q and %q share the target %q", g1, g2, targetValue(g1))
		}
	})
}
