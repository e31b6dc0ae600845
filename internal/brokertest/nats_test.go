package brokertest

import (
	"testing"
)

// TestNATSURL: the URL comes from SWITCHYARD_NATS_URL, checked on its first
// server (credentials, port default, cluster lists); an unreachable one is
// a skip locally.
func TestNATSURL(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("SWITCHYARD_NATS_URL", "nats://user:pw@127.0.0.1:1,other:4222")
	var got string
	ok := t.Run("unreachable", func(t *testing.T) {
		got = NATSURL(t)
		t.Error("not skipped")
	})
	if !ok || got != "" {
		t.Fatalf("an unreachable server is skipped: ok=%v got=%q", ok, got)
	}
}
