package nats

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	u, err := url.Parse("nats://alice:s3cret@n1:4222,n2,n3:4333?namespace=prod&replicas=3&storage=memory&max_age=24h&max_bytes=1000000&max_msgs=500" +
		"&duplicate_window=5m&ack_wait=1m&max_ack_pending=100&dead_letter_max=50&dead_letter_max_bytes=9999&max_message_bytes=1000" +
		"&prefetch=32&publish_window=64&request_timeout=5s&connect_timeout=2s&name=orders-svc&creds=/etc/u.creds&nkey=/etc/seed&tls_ca=/ca.pem&tls_cert=/c.pem&tls_key=/k.pem")
	require.NoError(t, err)
	c, err := parseURL(u)
	require.NoError(t, err)
	assert.Equal(t, Config{
		URL: "nats://alice:s3cret@n1:4222,n2,n3:4333", Namespace: "prod", Replicas: 3, Storage: StorageMemory,
		MaxAge: 24 * time.Hour, MaxBytes: 1000000, MaxMsgs: 500, DuplicateWindow: 5 * time.Minute, AckWait: time.Minute,
		MaxAckPending: 100, DeadLetterMax: 50, DeadLetterMaxBytes: 9999, MaxMessageBytes: 1000, Prefetch: 32, PublishWindow: 64,
		RequestTimeout: 5 * time.Second, ConnectTimeout: 2 * time.Second, Name: "orders-svc", CredsFile: "/etc/u.creds",
		NKeySeedFile: "/etc/seed", RootCAsFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem",
	}, c)
	s, err := parseServers(c.URL)
	require.NoError(t, err)
	assert.Equal(t, []string{"nats://n1:4222", "nats://n2:4222", "nats://n3:4333"}, s.urls)
	assert.Equal(t, []string{"n1:4222", "n2:4222", "n3:4333"}, s.hosts)
	assert.Equal(t, "alice", s.user)
	assert.Equal(t, "s3cret", s.password)
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"amqp://x", `nats: URL scheme "amqp", want nats or tls`},
		{"nats://x?queue_type=quorum", `nats: query parameter queue_type="quorum": unknown (known: namespace, replicas, storage, max_age, max_bytes, max_msgs, duplicate_window, ack_wait, max_ack_pending, dead_letter_max, dead_letter_max_bytes, max_message_bytes, prefetch, publish_window, request_timeout, connect_timeout, name, creds, nkey, tls_ca, tls_cert, tls_key)`},
		{"nats://x?replicas=three&ack_wait=-1s", "nats: query parameter ack_wait=\"-1s\": want a positive duration\nnats: query parameter replicas=\"three\": not an integer"},
		{"nats://x?replicas=6", "nats: Replicas 6 out of range 1..5"},
		{"nats://x?namespace=a_b&storage=tape", "nats: Namespace \"a_b\", want 1 to 32 ASCII letters and digits\nnats: Storage \"tape\", want \"file\" or \"memory\""},
		{"nats://x?ack_wait=10ms", "nats: AckWait 10ms is under 1s"},
		{"nats://x?tls_cert=/c.pem", "nats: CertFile and KeyFile go together"},
		{"nats://alice:s3cret@x:99999", "nats: URL nats://alice:xxxxx@x:99999: port \"99999\" out of range"},
		{"nats://s3cret-token@x,,y", "nats: URL nats://xxxxx@x,,y has an empty host"},
		// Found by FuzzParseURL: made server URLs that do not parse.
		{"nats://alice:s3cret@:0:", "nats: URL nats://alice:xxxxx@:0:: host \":0:\" is not HOST[:PORT] (bracket IPv6 addresses)"},
		{"nats://a:1,::1", "nats: URL nats://a:1,::1: host \"::1\" is not HOST[:PORT] (bracket IPv6 addresses)"},
		{"nats://x/path", "nats: URL nats://x/path: a path is not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			_, err = parseURL(u)
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestValidateJoinsProblems(t *testing.T) {
	err := Config{Namespace: "no.dots", Replicas: -1, MaxAge: -time.Second, PublishWindow: -2, CertFile: "c"}.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"nats: URL is empty", `nats: Namespace "no.dots"`, "nats: Replicas -1 out of range", "nats: MaxAge -1s is negative",
		"nats: PublishWindow -2 is negative", "nats: CertFile and KeyFile go together",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.ErrorContains(t, Config{URL: "nats://x?replicas=3"}.Validate(), "only OpenURL reads them")
	assert.NoError(t, Config{URL: "tls://x"}.Validate())
}

func TestDefaults(t *testing.T) {
	c := Config{URL: "nats://x"}
	c.setDefaults()
	assert.Equal(t, Config{
		URL: "nats://x", Name: "switchyard", Namespace: DefaultNamespace, Replicas: 1, Storage: StorageFile,
		DuplicateWindow: 2 * time.Minute, AckWait: 30 * time.Second, MaxAckPending: 10000, DeadLetterMax: 10000,
		Prefetch: 256, PublishWindow: 4096, RequestTimeout: 30 * time.Second, ConnectTimeout: 10 * time.Second,
	}, c)
}

func TestRedactURL(t *testing.T) {
	assert.Equal(t, "nats://alice:xxxxx@h:4222", redactURL("nats://alice:pw@h:4222"))
	assert.Equal(t, "nats://xxxxx@h:4222", redactURL("nats://tok3n@h:4222"))
	assert.Equal(t, "nats://h:4222", redactURL("nats://h:4222"))
}
