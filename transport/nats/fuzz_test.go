// Fuzz targets of the NATS transport's pure mappings (no server).
//
//	FuzzParseURL  nats:// and tls:// URLs to Config and server list: never
//	              panics; no error shows the password or token (seeds:
//	              s3cr3t-PASS); an accepted URL keeps its credentials, and
//	              every server URL it gives is SCHEME://HOST:PORT with a
//	              port in 1..65535.
//	FuzzHeaders   Message → NATS headers → the wire text nats.go writes →
//	              nats.DecodeHeadersMsg → Message: what checkMessage
//	              accepts comes back equal (ID, Key, Metadata, Payload),
//	              and the header block is as large as checkMessage counted.
//	FuzzNames     valid topic and group names give stream and consumer
//	              names NATS accepts (at most 255 bytes of [A-Za-z0-9_-])
//	              and subjects without empty tokens or wildcards; distinct
//	              groups of a topic never share a consumer or subject.
//
// Seeds are the f.Add calls and the files in testdata/fuzz/<target>; plain
// `go test` runs them. To fuzz one target for minutes (one at a time):
//
//	go test -run '^$' -fuzz '^FuzzHeaders$' -fuzztime 5m -parallel 1 ./transport/nats
//
// Findings (60s each with -parallel 1 on 2 shared cores, December 2026):
// FuzzParseURL found in 2s that a host with ':' and no valid port (":0:",
// "::1") was taken with port 4222 and made a server URL that does not
// parse; such hosts are now refused (testdata/fuzz/FuzzParseURL/
// 459553923deb4dbf); after the fix, 174,934 executions found nothing.
// FuzzHeaders 21,948 executions, FuzzNames 115,205: nothing.
package nats

import (
	"bytes"
	"maps"
	"net/url"
	"regexp"
	"strings"
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

const fuzzPassword = "s3cr3t-PASS"

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"nats://127.0.0.1:4222", "nats://u:" + fuzzPassword + "@a:1,b:2", "nats://" + fuzzPassword + "@host",
		"tls://u:" + fuzzPassword + "@host:4443?tls_ca=/ca.pem&tls_cert=/c.pem", "nats://u:" + fuzzPassword + "@host:0",
		"nats://u:" + fuzzPassword + "@a,,b", "nats://u:" + fuzzPassword + "@host/path", "nats://u:" + fuzzPassword + "@host?replicas=9",
		"nats://u:" + fuzzPassword + "@host?namespace=bad-ns&ack_wait=1ms", "nats://" + fuzzPassword + "@host:70000",
		"nats://u:" + fuzzPassword + "@[::1]:4222,[::2]", "nats:u:" + fuzzPassword + "@host", "nats://u:" + fuzzPassword + "@:4222",
		"nats://u:" + fuzzPassword + "@host?storage=disk&max_bytes=-1&prefetch=x", "nats://u:s3cr3t%2DPASS@host:x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") {
			return
		}
		var secret string
		if u.User != nil {
			p, ok := u.User.Password()
			if !ok {
				p = u.User.Username() // a token
			}
			if len(p) >= 6 && strings.Count(raw, p) <= 1 {
				secret = p
			}
		}
		c, err := parseURL(u)
		if err != nil {
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Fatalf("parseURL(%q): error %q shows a credential", raw, err)
			}
			return
		}
		s, err := parseServers(c.URL)
		if err != nil {
			t.Fatalf("parseURL(%q) accepted URL %q, whose servers do not parse: %v", raw, c.URL, err)
		}
		if p, ok := u.User.Password(); ok && (s.password != p || s.user != u.User.Username()) {
			t.Fatalf("parseURL(%q): credentials became %q, %q", raw, s.user, s.password)
		}
		if len(s.urls) == 0 || len(s.urls) != len(s.hosts) {
			t.Fatalf("parseURL(%q): servers %q, hosts %q", raw, s.urls, s.hosts)
		}
		for i, su := range s.urls {
			v, err := url.Parse(su)
			if err != nil || v.Scheme != u.Scheme || v.Host != s.hosts[i] || v.Port() == "" || v.User != nil || v.Path != "" {
				t.Fatalf("parseURL(%q): server URL %q (%v)", raw, su, err)
			}
		}
	})
}

// wireHeader writes h as nats.go does (Msg.headerBytes): the status line,
// "KEY: VALUE\r\n" lines with values trimmed and CR and LF made spaces, and
// a blank line.
func wireHeader(h natsgo.Header) []byte {
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			v = strings.Trim(v, " \t\r\n")
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func FuzzHeaders(f *testing.F) {
	f.Add("id-1", "", "k", "v", "k2", "v2", []byte("payload"))
	f.Add("id", "order-7", pubsub.MetadataContentType, "application/json", pubsub.MetadataCEID, "id", []byte{0xff, 0})
	f.Add("id", " key ", "K", " lead", "k", "trail\t", []byte(nil))
	f.Add("=?utf-8?b?aGk=?=", "=?x", "x", "=?utf-8?b?aGk=?=", "y", "=?utf-8?b?!!?=", []byte(""))
	f.Add("id\r\n", "k\x00", "Nats-Msg-Id", "x", "x-switchyard-id", "y", []byte("r"))
	f.Add("id", "", "bad key", "v", "a:b", "v", []byte("r"))
	f.Add("\xff", "\x7f", "a", "\xfe\xff", "b", "é\u2028", []byte("r"))
	f.Fuzz(func(t *testing.T, id, key, k1, v1, k2, v2 string, payload []byte) {
		if id == "" {
			return // Publish sets an ID first
		}
		m := &driver.Message{ID: id, Key: key, Payload: payload, Metadata: map[string]string{k1: v1, k2: v2}}
		const max = 1 << 20
		if err := checkMessage(m, max); err != nil {
			return
		}
		nm := encodeMessage("ns.topic", m)
		wire := wireHeader(nm.Header)
		if got, want := len(wire), headerBlock(HeaderMsgID, m.ID, HeaderKey, m.Key, m.Metadata); got != want {
			t.Fatalf("header block is %d bytes, checkMessage counted %d", got, want)
		}
		h, err := natsgo.DecodeHeadersMsg(wire)
		if err != nil {
			t.Fatalf("headers %q do not decode: %v", wire, err)
		}
		back := decodeMessage(h, nm.Data, func() string { return "fallback" })
		if back.ID != m.ID || back.Key != m.Key || string(back.Payload) != string(m.Payload) {
			t.Fatalf("sent ID %q key %q payload %q, got ID %q key %q payload %q", m.ID, m.Key, m.Payload, back.ID, back.Key, back.Payload)
		}
		if !maps.Equal(back.Metadata, m.Metadata) {
			t.Fatalf("sent metadata %q, got %q (wire %q)", m.Metadata, back.Metadata, wire)
		}
		// A copy carries the ID in x-switchyard-id and the attempt.
		cp := encodeCopy("ns_group.topic.g", m, "copy-1", 3)
		h, err = natsgo.DecodeHeadersMsg(wireHeader(cp.Header))
		if err != nil {
			t.Fatalf("copy headers do not decode: %v", err)
		}
		if back := decodeMessage(h, cp.Data, nil); back.ID != m.ID || baseAttempt(h) != 3 || !maps.Equal(back.Metadata, m.Metadata) {
			t.Fatalf("copy: ID %q attempt %d metadata %q", back.ID, baseAttempt(h), back.Metadata)
		}
	})
}

var (
	objectNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	subjectRE    = regexp.MustCompile(`^[^ \t\r\n.*>]+(\.[^ \t\r\n.*>]+)*$`)
)

func FuzzNames(f *testing.F) {
	f.Add("orders", "billing", "billing-eu")
	f.Add("a.b", "c", "c.d")
	f.Add("a", "b_c", "b.c")
	f.Add("a", "b--c", "b-_c")
	f.Add("t", strings.Repeat("-", 200), strings.Repeat("-", 199)+"_")
	f.Add(strings.Repeat("t.", 99)+"t", strings.Repeat("g", 200), strings.Repeat("g", 199)+"h")
	f.Fuzz(func(t *testing.T, topic, g1, g2 string) {
		var b broker
		if pubsub.ValidateTopic(topic) != nil || b.ValidateNames(topic, "") != nil {
			return
		}
		n := names{ns: DefaultNamespace}
		for _, s := range []string{n.stream(topic), n.deadLetterStream()} {
			if !objectNameRE.MatchString(s) {
				t.Fatalf("stream name %q", s)
			}
		}
		if !subjectRE.MatchString(n.topicSubject(topic)) {
			t.Fatalf("topic subject %q", n.topicSubject(topic))
		}
		var objs []map[string]string
		for _, g := range []string{g1, g2} {
			if pubsub.ValidateGroup(g) != nil {
				return
			}
			o := map[string]string{
				"consumer": consumerName(g), "own consumer": ownConsumerName(g),
				"group subject": n.groupSubject(topic, g), "dead-letter subject": n.deadLetterSubject(topic, g),
			}
			for kind, s := range o {
				re := objectNameRE
				if strings.HasSuffix(kind, "subject") {
					re = subjectRE
				}
				if !re.MatchString(s) {
					t.Fatalf("%s %q of group %q", kind, s, g)
				}
			}
			objs = append(objs, o)
		}
		if g1 == g2 {
			return
		}
		seen := map[string]string{}
		for _, o := range objs {
			for kind, s := range o {
				if prev, ok := seen[s]; ok {
					t.Fatalf("%s %q of groups %q and %q (also a %s)", kind, s, g1, g2, prev)
				}
				seen[s] = kind
			}
		}
	})
}
