package cmdutil_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// TestOpenBroker: the broker from PUBSUB_URL is instrumented (still a
// Pinger and a GroupCreator), and its metrics are served by Metrics in the
// Prometheus text format.
func TestOpenBroker(t *testing.T) {
	ctx := context.Background()
	c := cmdutil.Common{PubSubURL: "mem://cmdutil-" + pubsub.NewID()[:8]}
	assert.Nil(t, c.Metrics(), "no metrics before OpenBroker")
	b, err := c.OpenBroker(ctx, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer b.Close()
	p, ok := b.(pubsub.Pinger)
	require.True(t, ok, "%T is not a pubsub.Pinger", b)
	require.NoError(t, p.Ping(ctx))
	_, ok = b.(pubsub.GroupCreator)
	assert.True(t, ok, "%T is not a pubsub.GroupCreator", b)
	require.NoError(t, b.Publish(ctx, "orders", pubsub.NewMessage([]byte("a")), pubsub.NewMessage([]byte("b"))))

	require.NotNil(t, c.Metrics())
	rec := httptest.NewRecorder()
	c.Metrics().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	body, _ := io.ReadAll(rec.Body)
	assert.Regexp(t, `(?m)^messaging_client_sent_messages_total\{messaging_destination_name="orders",messaging_operation_name="send",messaging_system="memory",otel_scope_name="github.com/switchyard-go/switchyard/pubsub/otelpubsub",[^}]*\} 2$`, string(body))
	assert.Regexp(t, `(?m)^go_goroutines \d+$`, string(body), "the Go runtime's metrics too")
}

func TestOpenBrokerError(t *testing.T) {
	b, err := cmdutil.OpenBroker(context.Background(), "nope://x", slog.New(slog.DiscardHandler))
	assert.Nil(t, b)
	assert.ErrorIs(t, err, transport.ErrUnknownScheme)
	assert.ErrorContains(t, err, "open broker nope://x: ")
}
