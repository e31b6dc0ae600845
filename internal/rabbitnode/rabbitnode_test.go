//go:build reliability

package rabbitnode_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/rabbitnode"
)

// TestCluster starts a two-node cluster with a config line, checks the
// membership, the setting, a quorum queue's leader, Stop/Start and Kill.
//
//	go test -race -tags reliability -run TestCluster ./internal/rabbitnode
func TestCluster(t *testing.T) {
	nodes := rabbitnode.Cluster(t, 2, "consumer_timeout = 12345")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	status, err := nodes[0].Ctl(ctx, "cluster_status", "--formatter", "json")
	require.NoError(t, err)
	for _, n := range nodes {
		assert.Contains(t, status, n.Name)
		assert.NotEqual(t, 5672, n.Port)
	}
	env, err := nodes[1].Ctl(ctx, "eval", "application:get_env(rabbit, consumer_timeout).")
	require.NoError(t, err)
	assert.Equal(t, "{ok,12345}", strings.TrimSpace(env))

	conn, err := amqp.Dial(nodes[1].URL())
	require.NoError(t, err)
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("rabbitnode-test", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	leader, err := nodes[0].QueueLeader(ctx, "rabbitnode-test")
	require.NoError(t, err)
	assert.Contains(t, []string{nodes[0].Name, nodes[1].Name}, leader)

	require.NoError(t, nodes[1].Stop(ctx))
	assert.False(t, nodes[1].Running())
	_, err = net.DialTimeout("tcp", nodes[1].Addr(), time.Second)
	assert.Error(t, err, "a stopped node refuses connections")
	require.NoError(t, nodes[1].Start(ctx))
	conn, err = amqp.Dial(nodes[1].URL())
	require.NoError(t, err, "a restarted node accepts connections")
	require.NoError(t, conn.Close())

	require.NoError(t, nodes[1].Kill())
	assert.False(t, nodes[1].Running())
}
