// Fuzz targets of the portable layer's pure parts (no broker).
//
//	FuzzValidateName  ValidateTopic and ValidateGroup accept exactly the
//	                  names of DESIGN line 1 (1 to 200 bytes of letters,
//	                  digits and "._-"), and their errors wrap
//	                  ErrInvalidTopic / ErrInvalidGroup.
//	FuzzTopic         a typed Topic[T] publishes a value with the JSON codec
//	                  and its CloudEvents attributes, and its Subscribe
//	                  handler decodes the same value back: ce-id equals the
//	                  message ID and is never empty, ce-specversion is 1.0,
//	                  ce-time is RFC 3339, content type application/json,
//	                  and the user's metadata is kept unless it names one
//	                  of those attributes.
//	FuzzTopicDecode   arbitrary payloads given to a typed subscription's
//	                  handler: the value decodes, or the error is Permanent
//	                  (dead-lettered at once), never a panic.
//
// Seeds are the f.Add calls and the files in testdata/fuzz/<target>; plain
// `go test` runs them. To fuzz one target for minutes (one at a time):
//
//	go test -run '^$' -fuzz '^FuzzTopic$' -fuzztime 5m -parallel 1 ./pubsub
//
// Findings (60s each with -parallel 1 on 2 shared cores, December 2026):
// FuzzValidateName 273,126 executions, nothing; FuzzTopic 4,493 executions
// (JSON and reflection make it slow), nothing beyond what its seeds showed
// when the target was written: Topic.Publish with WithID("") sent ce-id ""
// while Publish gave the message a new ID (fixed; the input is
// testdata/fuzz/FuzzTopic/withid-empty); FuzzTopicDecode 249,408
// executions, nothing.
package pubsub_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchyard-go/switchyard/pubsub"
)

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"orders", "a.b-c_d", "", "a b", "a/b", "é", strings.Repeat("a", 200), strings.Repeat("a", 201), "a\x00", "*", ">", "a:b", "~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := len(name) >= 1 && len(name) <= pubsub.MaxNameLength
		for _, c := range []byte(name) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-", c) >= 0) {
				want = false
			}
		}
		et, eg := pubsub.ValidateTopic(name), pubsub.ValidateGroup(name)
		if (et == nil) != want || (eg == nil) != want {
			t.Fatalf("ValidateTopic(%q) = %v, ValidateGroup = %v, want valid %v", name, et, eg, want)
		}
		if !want && (!errors.Is(et, pubsub.ErrInvalidTopic) || !errors.Is(eg, pubsub.ErrInvalidGroup)) {
			t.Fatalf("errors %v, %v do not wrap the sentinels", et, eg)
		}
	})
}

// event is the typed topic's value: strings, numbers, bytes and a nested
// list, as applications send them.
type event struct {
	Name  string            `json:"name"`
	N     int64             `json:"n"`
	F     float64           `json:"f"`
	Raw   []byte            `json:"raw"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// capture is a Publisher and Subscriber that keeps what it is given.
type capture struct {
	msgs []*pubsub.Message
	h    pubsub.Handler
}

func (c *capture) Publish(_ context.Context, _ string, msgs ...*pubsub.Message) error {
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func (c *capture) Subscribe(_ context.Context, _, _ string, h pubsub.Handler, _ ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	c.h = h
	return nil, nil
}

func (c *capture) Close() error { return nil }

func FuzzTopic(f *testing.F) {
	f.Add("orders", "name", int64(7), 0.5, []byte{0, 0xff}, "tag", "id-1", "k", "v", "key")
	f.Add("orders", "", int64(math.MinInt64), -0.0, []byte(nil), "", "id-2", pubsub.MetadataCEID, "mine", "")
	f.Add("t", "\xff\xfe invalid", int64(1), 1e300, []byte("x"), "\u2028", "id", pubsub.MetadataContentType, "text/plain", "")
	f.Add("t", "<html>&", int64(0), math.SmallestNonzeroFloat64, []byte(""), "a\"b", "id", "ce-time", "yesterday", "")
	f.Fuzz(func(t *testing.T, topic, name string, n int64, fl float64, raw []byte, tag, id, mk, mv, key string) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			return // JSON has no such numbers: Publish fails to encode
		}
		v := event{Name: name, N: n, F: fl, Raw: raw, Tags: []string{tag}}
		tp := pubsub.NewTopic[event](topic, pubsub.WithSource("/fuzz"))
		c := &capture{}
		before := time.Now()
		if err := tp.Publish(context.Background(), c, v, pubsub.WithID(id), pubsub.WithMetadata(mk, mv), pubsub.WithKey(key)); err != nil {
			t.Fatalf("Publish(%+v): %v", v, err)
		}
		if len(c.msgs) != 1 {
			t.Fatalf("published %d messages", len(c.msgs))
		}
		m := c.msgs[0]
		md := m.Metadata
		if m.ID == "" || md[pubsub.MetadataCEID] != m.ID {
			t.Fatalf("ID %q, ce-id %q: want equal and not empty", m.ID, md[pubsub.MetadataCEID])
		}
		if id != "" && m.ID != id {
			t.Fatalf("WithID(%q) gave ID %q", id, m.ID)
		}
		if md[pubsub.MetadataCESpecVersion] != "1.0" || md[pubsub.MetadataCESource] != "/fuzz" || md[pubsub.MetadataCEType] != topic ||
			md[pubsub.MetadataContentType] != "application/json" || m.Key != key {
			t.Fatalf("attributes %q, key %q", md, m.Key)
		}
		ts, err := time.Parse(time.RFC3339Nano, md[pubsub.MetadataCETime])
		if err != nil || ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
			t.Fatalf("ce-time %q: %v", md[pubsub.MetadataCETime], err)
		}
		if !strings.HasPrefix(mk, pubsub.MetadataCloudEventsPrefix) && mk != pubsub.MetadataContentType && md[mk] != mv {
			t.Fatalf("WithMetadata(%q, %q) lost: %q", mk, mv, md)
		}
		// The subscriber decodes the same value.
		var got *event
		if _, err := tp.Subscribe(context.Background(), c, "g", func(_ context.Context, e event, msg *pubsub.Message) error {
			got = &e
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.h(context.Background(), m); err != nil {
			t.Fatalf("handler: %v (payload %q)", err, m.Payload)
		}
		// JSON carries text as UTF-8: invalid bytes come back as U+FFFD.
		want := v
		want.Name, want.Tags = jsonText(name), []string{jsonText(tag)}
		if len(want.Raw) == 0 {
			want.Raw = got.Raw // nil and empty both decode as they may
		}
		if got == nil || !reflect.DeepEqual(*got, want) {
			t.Fatalf("published %+v, decoded %+v", want, got)
		}
	})
}

// jsonText is s as encoding/json carries it: each byte of invalid UTF-8
// becomes U+FFFD.
func jsonText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func FuzzTopicDecode(f *testing.F) {
	for _, s := range []string{`{"name":"x","n":1}`, `{"n":1e400}`, `{"n":1.5}`, `null`, `[]`, ``, `{"raw":"!!"}`, `{"attrs":{"a":1}}`, "\xff", `{"name":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		tp := pubsub.NewTopic[event]("t")
		c := &capture{}
		called := false
		if _, err := tp.Subscribe(context.Background(), c, "g", func(context.Context, event, *pubsub.Message) error {
			called = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		err := c.h(context.Background(), &pubsub.Message{ID: "id", Payload: payload})
		if (err == nil) != called {
			t.Fatalf("handler called %v, error %v", called, err)
		}
		if err != nil && !pubsub.IsPermanent(err) {
			t.Fatalf("decode error %v is not Permanent", err)
		}
	})
}
