package gcppubsub

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Config
	}{
		{"gcppubsub://my-project", Config{ProjectID: "my-project"}},
		{"gcppubsub://my-project/", Config{ProjectID: "my-project"}},
		{"gcppubsub://p1?create=false", Config{ProjectID: "p1", DisableAutoCreate: true}},
		{"gcppubsub://p1?create=true&ordering=false", Config{ProjectID: "p1", DisableOrdering: true}},
		{
			"gcppubsub://p1?max_message_bytes=1000&ack_deadline=30s&streams=4&dead_letter_retention=72h",
			Config{ProjectID: "p1", MaxMessageBytes: 1000, AckDeadline: 30 * time.Second, ReceiveStreams: 4, DeadLetterRetention: 72 * time.Hour},
		},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			got, err := parseURL(u)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want []string // substrings of the error
	}{
		{"gcppubsub://", []string{"ProjectID is empty"}},
		{"amqp://p", []string{`scheme "amqp"`}},
		{"gcppubsub://p/topics/x", []string{"gcppubsub://p/topics/x: a path or opaque part is not allowed"}},
		{"gcppubsub://p?colour=blue", []string{`unknown query parameter "colour"`, "known: ack_deadline, create, dead_letter_retention, max_message_bytes, ordering, streams"}},
		{"gcppubsub://p?create=maybe&streams=x", []string{`create="maybe"`, `streams="x"`}},
		{"gcppubsub://p?ack_deadline=5s&max_message_bytes=20000000&streams=-1", []string{"AckDeadline 5s", "MaxMessageBytes 20000000", "ReceiveStreams -1"}},
		{"gcppubsub://p?ack_deadline=10500ms", []string{"AckDeadline 10.5s", "whole seconds"}},
		{"gcppubsub://p?dead_letter_retention=5m", []string{"DeadLetterRetention 5m0s out of range"}},
		{"gcppubsub://p?dead_letter_retention=169h", []string{"DeadLetterRetention 169h0m0s out of range"}},
		{"gcppubsub://bad_project!", []string{`ProjectID "bad_project!" has '_'`}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			_, err = parseURL(u)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestOpenURLNeverPrintsCredentials: user information is refused without
// being repeated.
func TestOpenURLNeverPrintsCredentials(t *testing.T) {
	for _, raw := range []string{
		"gcppubsub://svc-account:s3cr3t-key@my-project",
		"gcppubsub://s3cr3t-key@my-project?colour=blue",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = OpenURL(context.Background(), u)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "credentials do not belong in the URL")
		assert.NotContains(t, err.Error(), "s3cr3t")
	}
	// Opaque URLs and paths have no user information, but may hold a
	// password before an '@' (found by FuzzOpen).
	for _, raw := range []string{
		"gcppubsub:svc-account:s3cr3t-key@my-project",
		"gcppubsub://my-project/svc-account:s3cr3t-key@x",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = OpenURL(context.Background(), u)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not allowed")
		assert.NotContains(t, err.Error(), "s3cr3t")
	}
}

func TestConfigValidateJoinsEveryProblem(t *testing.T) {
	err := Config{ProjectID: "", MaxMessageBytes: -1, AckDeadline: time.Hour, ReceiveStreams: -2, DeadLetterRetention: time.Minute}.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, w := range []string{"ProjectID is empty", "MaxMessageBytes -1", "AckDeadline 1h0m0s", "ReceiveStreams -2", "DeadLetterRetention 1m0s"} {
		assert.Contains(t, msg, w)
	}
	assert.Len(t, strings.Split(msg, "\n"), 5, "one line per problem")

	assert.NoError(t, Config{ProjectID: "p"}.Validate(), "zero values mean the defaults")
	c := Config{ProjectID: "p"}
	c.setDefaults()
	assert.Equal(t, Config{ProjectID: "p", MaxMessageBytes: DefaultMaxMessageBytes, AckDeadline: DefaultAckDeadline, ReceiveStreams: DefaultReceiveStreams, DeadLetterRetention: DefaultDeadLetterRetention}, c)
	assert.Equal(t, 9_995_904, DefaultMaxMessageBytes)
}
