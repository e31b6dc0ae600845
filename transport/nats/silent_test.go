//go:build reliability

package nats

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSilentNetwork: a network that stops carrying anything without
// closing the connection (a blackhole: the proxy holds every byte) shows in
// Ping as soon as its context ends, since Ping asks JetStream a question
// (nats.go itself notices only after maxPingsOut missed pings, 30 to 40s);
// once the network carries again, Ping is ready within pingRecover. A few
// seconds:
//
//	go test -race -tags reliability -run TestSilentNetwork -v ./transport/nats
func TestSilentNetwork(t *testing.T) {
	const timeout = time.Second
	base := testURL(t, "")
	s, err := parseServers(strings.SplitN(base, "?", 2)[0])
	require.NoError(t, err)
	p := newProxy(t, s.hosts[0])
	c := openTest(t, "nats://"+p.Addr()+"?"+strings.SplitN(base, "?", 2)[1])
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return c.Ping(ctx)
	}
	require.NoError(t, ping())

	p.SetLatency(time.Hour) // nothing gets through; the connection stays open
	silent := time.Now()
	var perr error
	require.Eventually(t, func() bool { perr = ping(); return perr != nil }, timeout+5*time.Second, 10*time.Millisecond, "Ping reports the silent network")
	detect := time.Since(silent)
	assert.ErrorIs(t, perr, context.DeadlineExceeded)
	assert.LessOrEqual(t, detect, timeout+time.Second)

	p.SetLatency(0)
	p.Cut() // drop the held bytes: nats.go reconnects
	back := time.Now()
	require.Eventually(t, func() bool { return ping() == nil }, pingRecover+5*time.Second, 10*time.Millisecond, "Ping ready again")
	recovered := time.Since(back)
	assert.LessOrEqual(t, recovered, pingRecover)
	t.Logf("Ping with a %v timeout failed %v after the network went silent (%v), ready %v after it carried again", timeout, detect.Round(time.Millisecond), perr, recovered.Round(time.Millisecond))
}
