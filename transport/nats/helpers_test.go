package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
)

// defaultTestURL is the NATS server tests use when SWITCHYARD_NATS_URL is
// not set.
const defaultTestURL = "nats://127.0.0.1:4222"

// serverURL returns the test server's URL (SWITCHYARD_NATS_URL, default
// defaultTestURL) after checking that it accepts connections; if not, it
// skips t, or fails it under CI=true.
func serverURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("SWITCHYARD_NATS_URL")
	if raw == "" {
		raw = defaultTestURL
	}
	s, err := parseServers(raw)
	require.NoError(t, err, "SWITCHYARD_NATS_URL")
	brokertest.Reachable(t, s.hosts[0], "NATS", "start nats-server with JetStream (nats-server -js) or set SWITCHYARD_NATS_URL")
	return raw
}

// testNamespace returns a namespace of its own for t, and deletes its
// streams (with their consumers) when t ends.
func testNamespace(t testing.TB) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := "sytest" + hex.EncodeToString(b[:])
	raw := serverURL(t)
	t.Cleanup(func() { deleteNamespace(t, raw, ns) })
	return ns
}

// testURL returns the URL of the test server with its own namespace and
// the query parameters of query added.
func testURL(t testing.TB, query string) string {
	t.Helper()
	u := serverURL(t) + "?namespace=" + testNamespace(t)
	if query != "" {
		u += "&" + query
	}
	return u
}

// deleteNamespace deletes every stream of namespace ns. Errors are logged.
func deleteNamespace(t testing.TB, raw, ns string) {
	nc, js := rawClient(t, raw)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var del []string
	for n := range names.Name() {
		if strings.HasPrefix(n, ns+"_") || n == ns+deadStreamInfix {
			del = append(del, n)
		}
	}
	if err := names.Err(); err != nil {
		t.Logf("cleanup: list streams: %v", err)
	}
	for _, n := range del {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Logf("cleanup: delete stream %s: %v", n, err)
		}
	}
}

// rawClient connects a plain nats.go client and its JetStream context to
// the server of raw.
func rawClient(t testing.TB, raw string) (*natsgo.Conn, jetstream.JetStream) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.RawQuery = ""
	nc, err := natsgo.Connect(u.String())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// openTest opens a broker on raw, closed when t ends.
func openTest(t testing.TB, raw string, opts ...pubsub.BrokerOption) *pubsub.Client {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenURL(ctx, u, append([]pubsub.BrokerOption{pubsub.WithLogger(nil)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// logTo returns a logger writing to buf at debug level.
func logTo(buf *testlog.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recv waits for a value from ch, failing t after timeout.
func recv[T any](t testing.TB, ch <-chan T, timeout time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("nothing received within %v", timeout)
		panic("unreachable")
	}
}

func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}
