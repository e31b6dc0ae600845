package transport_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			b, err := transport.Open(ctx, tc.url)
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, b)
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
	assert.Contains(t, transport.Schemes(), "mem")
}
