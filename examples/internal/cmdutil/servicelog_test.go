package cmdutil_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/examples/internal/cmdutil"
	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/internal/faultproxy"
	"github.com/switchyard-go/switchyard/internal/testlog"
)

// TestBrokerLogsCarryService: the lines a transport logs itself, such as
// its reconnect warning when the connection is cut, go through the
// service's logger with service=NAME (they used to bypass it). The
// connection to NATS goes through a TCP proxy that the test cuts.
func TestBrokerLogsCarryService(t *testing.T) {
	target := strings.TrimPrefix(brokertest.NATSURL(t), "nats://")
	target, _, _ = strings.Cut(target, "?")
	p, err := faultproxy.New(target)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	var buf testlog.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	c := cmdutil.Common{Service: "audit", PubSubURL: "nats://" + p.Addr() + "?namespace=sytestcmdutil"}
	b, err := c.OpenBroker(context.Background(), log)
	require.NoError(t, err)
	defer b.Close()

	p.Cut()
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "nats: connection lost; reconnecting") },
		10*time.Second, 20*time.Millisecond, "the transport warns of the cut: %s", buf.String())
	var transport []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "msg=\"nats:") || strings.Contains(l, "msg=nats:") {
			transport = append(transport, l)
		}
	}
	require.NotEmpty(t, transport)
	for _, l := range transport {
		assert.Contains(t, l, "service=audit", "a transport line without the service: %s", l)
	}
}
