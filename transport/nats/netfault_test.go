//go:build reliability

package nats

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/netchaos"
)

// TestNetworkFaults is issue 15's case 3 on NATS (127.0.0.1:4222, or
// SWITCHYARD_NATS_URL, in a namespace of its own): the client's connection
// goes through a fault proxy, whose cuts disturb no other user of the
// server. Two publishers and two groups run while the network is cut and
// refused for 10s, then restored, then 200ms slower each way for 10s, then
// limited to half the baseline's throughput for 10s. About a minute:
//
//	go test -race -tags reliability -run TestNetworkFaults -v ./transport/nats
func TestNetworkFaults(t *testing.T) {
	base := testURL(t, "")
	s, err := parseServers(strings.SplitN(base, "?", 2)[0])
	require.NoError(t, err)
	p := newProxy(t, s.hosts[0])
	c := openTest(t, "nats://"+p.Addr()+"?"+strings.SplitN(base, "?", 2)[1])
	netchaos.Run(t, netchaos.Config{
		Proxy:  p,
		Client: c,
		Topic:  "netfaults",
		// See "Readiness" in the package documentation.
		PingDetect:  pingDetect,
		PingRecover: pingRecover,
	})
}
