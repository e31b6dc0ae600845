package rabbitmq

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

const secret = "s3cr3t-Pa55"

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  string
		want Config
	}{
		{
			name: "defaults",
			url:  "amqp://guest:guest@127.0.0.1:5672/",
			want: Config{URL: "amqp://guest:guest@127.0.0.1:5672/"},
		},
		{
			name: "every option",
			url:  "amqp://u:p@h:1234/vh?prefetch=100&queue_type=classic&confirm_timeout=2s&connect_timeout=500ms&max_message_bytes=1048576&dead_letter_limit=50",
			want: Config{URL: "amqp://u:p@h:1234/vh", Prefetch: 100, QueueType: QueueClassic, ConfirmTimeout: 2 * time.Second, ConnectTimeout: 500 * time.Millisecond, MaxMessageBytes: 1 << 20, DeadLetterLimit: 50},
		},
		{
			name: "amqp091 parameters passed on",
			url:  "amqps://u:p@h/?heartbeat=5&cacertfile=%2Ftmp%2Fca.pem&queue_type=quorum",
			want: Config{URL: "amqps://u:p@h/?cacertfile=%2Ftmp%2Fca.pem&heartbeat=5", QueueType: QueueQuorum},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
		name string
		url  string
		want []string // every one appears in the error
	}{
		{"scheme", "http://u:" + secret + "@h/", []string{`scheme "http"`}},
		{"unknown parameter", "amqp://u:" + secret + "@h/?prefech=10", []string{`unknown query parameter "prefech"`, "known: confirm_timeout"}},
		{"all problems at once", "amqp://u:" + secret + "@h/?prefetch=x&queue_type=stream&confirm_timeout=soon&connect_timeout=-1s&max_message_bytes=0&dead_letter_limit=-3",
			[]string{"prefetch=\"x\" is not an integer", `queue_type="stream"`, `confirm_timeout="soon"`, "connect_timeout=-1s", "max_message_bytes=0", "dead_letter_limit=-3"}},
		{"prefetch over a short", "amqp://u:" + secret + "@h/?prefetch=70000", []string{"Prefetch 70000 out of range"}},
		// amqp091 finds no host in an opaque URL and would connect to
		// guest@localhost:5672 instead (found by the redaction test).
		{"opaque", "amqp:u:" + secret + "@h", []string{"amqp:[redacted] is opaque", "want amqp://USER:PASSWORD@HOST"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			_, err = parseURL(u)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

func TestConfigValidateJoinsEveryProblem(t *testing.T) {
	err := Config{Prefetch: -1, QueueType: "lazy", ConfirmTimeout: -time.Second, ConnectTimeout: -time.Second, MaxMessageBytes: -1, DeadLetterLimit: -1}.Validate()
	require.Error(t, err)
	for _, w := range []string{"URL is empty", "Prefetch -1", `QueueType "lazy"`, "ConfirmTimeout -1s", "ConnectTimeout -1s", "MaxMessageBytes -1", "DeadLetterLimit -1"} {
		assert.Contains(t, err.Error(), w)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), 7, "one line per problem")

	err = Config{URL: "amqp://u:" + secret + "@h:notaport/"}.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)

	err = Config{URL: "amqps:u:" + secret + "@h"}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is opaque")
	assert.NotContains(t, err.Error(), secret)

	assert.NoError(t, Config{URL: "amqp://localhost/"}.Validate(), "zero values mean the defaults")
}

func TestConfigDefaults(t *testing.T) {
	c := Config{URL: "amqp://localhost/"}
	c.setDefaults()
	assert.Equal(t, Config{
		URL: "amqp://localhost/", QueueType: QueueQuorum, ConfirmTimeout: 30 * time.Second, ConnectTimeout: 10 * time.Second,
		MaxMessageBytes: 128 << 20, DeadLetterLimit: 100_000,
	}, c, "Prefetch stays 0: twice each subscription's concurrency")
	b := &broker{cfg: c}
	assert.Equal(t, 20, b.prefetchFor(10))
	assert.Equal(t, 2, b.prefetchFor(1))
	assert.Equal(t, maxPrefetch, b.prefetchFor(40000))
	b.cfg.Prefetch = 5
	assert.Equal(t, 10, b.prefetchFor(10), "never below the concurrency")
	assert.Equal(t, 5, b.prefetchFor(3))
}

// TestReservedTopics: RabbitMQ's reserved "amq." names are refused before
// any I/O (the zero driver has no connection to use), and so are they by a
// client, for publishing, subscribing and dead-letter topics.
func TestReservedTopics(t *testing.T) {
	var b broker
	assert.ErrorIs(t, b.ValidateNames("amq.orders", ""), pubsub.ErrInvalidTopic)
	assert.ErrorIs(t, b.ValidateNames("amq.orders", "g"), pubsub.ErrInvalidTopic)
	assert.NoError(t, b.ValidateNames("orders", "amq.g"), "queue names begin with the topic")

	ctx := testCtx(t)
	c := openTest(t, testURL(t, ""))
	h := func(context.Context, *pubsub.Message) error { return nil }
	assert.ErrorIs(t, c.Publish(ctx, "amq.orders", &pubsub.Message{}), pubsub.ErrInvalidTopic)
	assert.ErrorIs(t, c.CreateGroup(ctx, "amq.orders", "g"), pubsub.ErrInvalidTopic)
	_, err := c.Subscribe(ctx, "amq.orders", "g", h)
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
	_, err = c.Subscribe(ctx, "orders", "g", h, pubsub.WithDeadLetter("amq.dead"))
	assert.ErrorIs(t, err, pubsub.ErrInvalidTopic)
}
