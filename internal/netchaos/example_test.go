package netchaos_test

import (
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/faultproxy"
	"github.com/switchyard-go/switchyard/internal/netchaos"
	"github.com/switchyard-go/switchyard/pubsub"
)

// A transport's reliability test opens its client through a fault proxy
// and runs the scenario, with the readiness times its package documents.
// (Compiled, not run: it needs a *testing.T and a broker.)
func ExampleRun() {
	testNetworkFaults := func(t *testing.T, p *faultproxy.Proxy, c *pubsub.Client) {
		res := netchaos.Run(t, netchaos.Config{Proxy: p, Client: c, Topic: "netfaults", PingDetect: 2 * time.Second, PingRecover: 10 * time.Second})
		t.Log(res)
	}
	_ = testNetworkFaults
}
