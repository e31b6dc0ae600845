//go:build reliability

package rabbitmq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSilentNetwork: a network that stops carrying anything without
// closing a connection (a blackhole: the proxy holds every byte) is
// noticed by the heartbeat. With heartbeat=1, Ping fails within 1.5
// heartbeat intervals plus a second (amqp091-go heartbeats every half
// interval and gives up on a connection that received nothing for three
// half-intervals); once the network carries again, Ping is ready within
// pingRecover. A few seconds:
//
//	go test -race -tags reliability -run TestSilentNetwork -v ./transport/rabbitmq
func TestSilentNetwork(t *testing.T) {
	const heartbeat = time.Second
	p, viaProxy := newProxy(t, testURL(t, "heartbeat=1"))
	c := openTest(t, viaProxy)
	ctx := testCtx(t)
	ping := func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return c.Ping(ctx)
	}
	require.NoError(t, ping())

	p.SetLatency(time.Hour) // nothing gets through; every connection stays open
	silent := time.Now()
	var perr error
	require.Eventually(t, func() bool { perr = ping(); return perr != nil }, 3*heartbeat+5*time.Second, 10*time.Millisecond, "Ping reports the silent network")
	detect := time.Since(silent)
	assert.LessOrEqual(t, detect, 3*heartbeat/2+time.Second)

	p.SetLatency(0)
	p.Cut() // drop the held bytes and any redial stuck behind them
	back := time.Now()
	require.Eventually(t, func() bool { return ping() == nil }, pingRecover+5*time.Second, 10*time.Millisecond, "Ping ready again")
	recovered := time.Since(back)
	assert.LessOrEqual(t, recovered, pingRecover)
	t.Logf("heartbeat %v: Ping failed %v after the network went silent (%v), ready %v after it carried again", heartbeat, detect.Round(time.Millisecond), perr, recovered.Round(time.Millisecond))
}
