package rabbitmq

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/faultproxy"
)

// newProxy starts a fault proxy to the broker of rawURL, closed with t, and
// returns it with the URL to reach the broker through it.
func newProxy(t testing.TB, rawURL string) (*faultproxy.Proxy, string) {
	t.Helper()
	p, viaProxy, err := faultproxy.ForURL(rawURL, "5672")
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p, viaProxy
}

// What the package documentation promises of Ping ("Readiness"): it fails
// within pingDetect of a cut connection and succeeds within pingRecover of
// the broker being reachable again.
const (
	pingDetect  = 2 * time.Second
	pingRecover = 10 * time.Second
)
