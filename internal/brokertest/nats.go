package brokertest

import (
	"net"
	"os"
	"strings"
	"testing"
)

// DefaultNATSURL is the NATS server (with JetStream) that tests use when
// SWITCHYARD_NATS_URL is not set.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// NATSURL returns the NATS URL for tests (SWITCHYARD_NATS_URL, default
// DefaultNATSURL) after checking that its first server accepts
// connections; if not, it skips t, or fails it under CI.
func NATSURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("SWITCHYARD_NATS_URL")
	if raw == "" {
		raw = DefaultNATSURL
	}
	hostport := raw
	if i := strings.Index(hostport, "://"); i >= 0 {
		hostport = hostport[i+3:]
	}
	if i := strings.LastIndexByte(hostport, '@'); i >= 0 {
		hostport = hostport[i+1:]
	}
	hostport, _, _ = strings.Cut(hostport, ",")
	hostport, _, _ = strings.Cut(hostport, "/")
	hostport, _, _ = strings.Cut(hostport, "?")
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), "4222")
	}
	Reachable(t, hostport, "NATS", "start nats-server with JetStream (nats-server -js) or set SWITCHYARD_NATS_URL")
	return raw
}
