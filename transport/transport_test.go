package transport_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		url  string
		want error
		text string
	}{
		{"", transport.ErrInvalidURL, "has no scheme"},
		{"localhost:5672", transport.ErrUnknownScheme, `"localhost"`},
		{"kafka://broker:9092", transport.ErrUnknownScheme, `"kafka"`},
		{"amqp://user:s3cret@host:5672/%zz", transport.ErrInvalidURL, "amqp://[unparsable URL]"},
		{"://nothing", transport.ErrInvalidURL, "[unparsable URL]"},
		{"//s3cret-token@host:4222", transport.ErrInvalidURL, `"//xxxxx@host:4222" has no scheme`}, // found by FuzzOpen
		{"//user:s3cret@host", transport.ErrInvalidURL, `"//xxxxx@host" has no scheme`},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			b, err := transport.Open(ctx, tc.url)
			require.ErrorIs(t, err, tc.want)
			assert.True(t, b == nil, "nil interface")
			assert.Contains(t, err.Error(), tc.text)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestOpenMemorySharesHubPerURL(t *testing.T) {
	ctx := context.Background()
	a, err := transport.Open(ctx, "mem://open-test")
	require.NoError(t, err)
	defer a.Close()
	b, err := transport.Open(ctx, "mem://open-test")
	require.NoError(t, err)
	defer b.Close()
	got := make(chan string, 1)
	_, err = a.Subscribe(ctx, "t", "g", func(_ context.Context, m *pubsub.Message) error { got <- m.ID; return nil })
	require.NoError(t, err)
	require.NoError(t, b.Publish(ctx, "t", &pubsub.Message{ID: "across-handles"}))
	assert.Equal(t, "across-handles", <-got)
}

func TestSchemes(t *testing.T) {
	assert.Equal(t, []string{"amqp", "amqps", "gcppubsub", "mem", "nats", "tls"}, transport.Schemes())
}

func TestOpenTransportErrorIsNilInterface(t *testing.T) {
	b, err := transport.Open(context.Background(), "mem://x?bogus=1")
	require.Error(t, err)
	assert.True(t, b == nil, "a failed Open returns a nil interface, not a typed nil")
}

func TestOpenNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := transport.Open(ctx, "nats://alice:s3cret@127.0.0.1:1?connect_timeout=2s")
	require.Error(t, err)
	assert.True(t, b == nil)
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "s3cret")

	raw := os.Getenv("SWITCHYARD_NATS_URL")
	if raw == "" {
		raw = "nats://127.0.0.1:4222"
	}
	brokertest.Reachable(t, strings.TrimPrefix(strings.SplitN(raw, "?", 2)[0], "nats://"), "NATS", "start nats-server -js or set SWITCHYARD_NATS_URL")
	b, err = transport.Open(ctx, raw+"?namespace=sytestopen")
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.(pubsub.Pinger).Ping(ctx))
}

func TestOpenUnreachableRabbitMQNamesHostNotPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	// Port 1 on loopback refuses connections at once.
	b, err := transport.Open(ctx, "amqp://guest:s3cret@127.0.0.1:1/?connect_timeout=2s")
	require.Error(t, err)
	assert.True(t, b == nil)
	assert.Contains(t, err.Error(), "127.0.0.1:1")
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestOpenRabbitMQHostList: Open takes a list of cluster nodes, tries each,
// and names each in its error, never the password.
func TestOpenRabbitMQHostList(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := transport.Open(ctx, "amqp://guest:s3cret@127.0.0.1:1,127.0.0.1:2/?connect_timeout=2s")
	require.Error(t, err)
	assert.True(t, b == nil)
	assert.NotErrorIs(t, err, transport.ErrInvalidURL)
	assert.Contains(t, err.Error(), "connect to 127.0.0.1:1 ")
	assert.Contains(t, err.Error(), "connect to 127.0.0.1:2 ")
	assert.NotContains(t, err.Error(), "s3cret")

	_, err = transport.Open(ctx, "amqp://guest:s3cret@127.0.0.1:1,127.0.0.1:0/")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `address 2 of the host list, "127.0.0.1:0"`)
	assert.NotContains(t, err.Error(), "s3cret")
}
