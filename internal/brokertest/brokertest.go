// Package brokertest finds the real brokers that tests run against. Locally a
// test whose broker is unreachable is skipped with a message saying how to
// run it; under CI=true it fails instead, so CI never passes by skipping.
package brokertest

import (
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/redact"
)

// DefaultAMQPURL is the RabbitMQ that tests use when SWITCHYARD_AMQP_URL is
// not set.
const DefaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"

// InCI reports whether the tests run under CI (CI=true), where an
// unreachable broker is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// AMQPURL returns the RabbitMQ URL for tests (SWITCHYARD_AMQP_URL, default
// DefaultAMQPURL) after checking that its port accepts connections; if not, it
// skips t, or fails it under CI.
func AMQPURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv("SWITCHYARD_AMQP_URL")
	if raw == "" {
		raw = DefaultAMQPURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("SWITCHYARD_AMQP_URL %s does not parse", redact.URL(raw))
	}
	host := u.Host
	if u.Port() == "" {
		port := "5672"
		if u.Scheme == "amqps" {
			port = "5671"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	Reachable(t, host, "RabbitMQ", "start RabbitMQ (rabbitmq-server -detached) or set SWITCHYARD_AMQP_URL")
	return raw
}

// Reachable checks that addr accepts TCP connections within 3 seconds; if
// not, it skips t with how-to (or fails it under CI=true).
func Reachable(t testing.TB, addr, what, howTo string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if InCI() {
		t.Fatalf("%s at %s is unreachable under CI=true: %v", what, addr, err)
	}
	t.Skipf("%s at %s is unreachable (%v); to run this test, %s", what, addr, err, howTo)
}
