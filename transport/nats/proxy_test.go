package nats

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/faultproxy"
)

// newProxy starts a fault proxy to target (host:port), closed with t; its
// address is p.Addr().
func newProxy(t testing.TB, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// What the package documentation promises of Ping ("Readiness"): it fails
// within pingDetect of a cut connection and succeeds within pingRecover of
// the server being reachable again.
const (
	pingDetect  = 2 * time.Second
	pingRecover = 5 * time.Second
)
