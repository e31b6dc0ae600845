package rabbitmq

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

func TestParseNodes(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want []node
	}{
		{"amqp://u:p@h/vh", []node{{"amqp://u:p@h/vh", "h:5672"}}},
		{"amqps://u:p@[::1]:5671/", []node{{"amqps://u:p@[::1]:5671/", "[::1]:5671"}}},
		{"amqp://u:p@h1:5672,h2:5673,10.0.0.3:5674/vh?heartbeat=5", []node{
			{"amqp://u:p@h1:5672/vh?heartbeat=5", "h1:5672"},
			{"amqp://u:p@h2:5673/vh?heartbeat=5", "h2:5673"},
			{"amqp://u:p@10.0.0.3:5674/vh?heartbeat=5", "10.0.0.3:5674"},
		}},
		{"amqps://h1:5671,h2:6000", []node{{"amqps://h1:5671", "h1:5671"}, {"amqps://h2:6000", "h2:6000"}}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := parseNodes(tc.url)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseNodesErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string
	}{
		{"amqp://u:" + secret + "@h1:5672,,h3/", `address 2 of the host list, "": empty address`},
		{"amqp://u:" + secret + "@h1:5672,h2:99999/", `address 2 of the host list, "h2:99999": port "99999" is not a number in 1..65535`},
		{"amqp://u:" + secret + "@h1:x,h2/", `address 1 of the host list, "h1:x": port "x"`},
		{"amqp://u:" + secret + "@h1:5672,:5673/", `address 2 of the host list, ":5673": no host`},
		{"amqp://u:" + secret + "@h1:5672,[::1]:5673/", `address 2 of the host list, "[::1]:5673": IPv6 literals are not supported in a host list`},
		{"amqp://u:" + secret + "@h1:1,h2:1:2/", `more than one ':'`},
		{"amqp://u:" + secret + "@h1:5672,h2/", `address 2 of the host list, "h2": no port`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := parseNodes(tc.url)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), secret)

			err = Config{URL: tc.url}.Validate()
			require.Error(t, err, "Validate checks every address")
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

// TestHostListFirstDead: with a host list whose first address refuses
// connections, OpenURL connects through the next one, and the
// client works. (transport.Open parses the URL with net/url, which
// accepts the list, and calls OpenURL.)
func TestHostListFirstDead(t *testing.T) {
	raw := testURL(t, "")
	u, err := url.Parse(raw)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	u.Host = dead + "," + u.Host
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenURL(ctx, u, pubsubLogger())
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Ping(ctx))

	// Every node dead: the error names each address and no password.
	u.User = url.UserPassword("guest", secret)
	u.Host = dead + "," + dead
	_, err = OpenURL(ctx, u, pubsubLogger())
	require.Error(t, err)
	assert.Equal(t, 6, strings.Count(err.Error(), dead), "the list (twice) and each node's failure (twice: ours and the dial error): %v", err)
	assert.NotContains(t, err.Error(), secret)
}

func pubsubLogger() pubsub.BrokerOption { return pubsub.WithLogger(testLogger()) }
