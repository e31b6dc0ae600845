//go:build reliability

package rabbitmq

import (
	"testing"

	"github.com/switchyard-go/switchyard/internal/netchaos"
)

// TestNetworkFaults is issue 15's case 3 on RabbitMQ (the default node, or
// SWITCHYARD_AMQP_URL): all three connections of a client go through a
// fault proxy, whose cuts disturb no other user of the node. Two
// publishers and two groups run while the network is cut and refused for
// 10s, then 200ms slower each way for 10s, then limited to half the
// baseline's throughput for 10s, then restored. About a minute:
//
//	go test -race -tags reliability -run TestNetworkFaults -v ./transport/rabbitmq
func TestNetworkFaults(t *testing.T) {
	p, viaProxy := newProxy(t, testURL(t, ""))
	topic := uniqueTopic(t, "g1", "g2")
	c := openTest(t, viaProxy)
	netchaos.Run(t, netchaos.Config{
		Proxy:  p,
		Client: c,
		Topic:  topic,
		// See "Readiness" in the package documentation.
		PingDetect:  pingDetect,
		PingRecover: pingRecover,
	})
}
