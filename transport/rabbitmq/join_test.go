package rabbitmq

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/testlog"
	"github.com/switchyard-go/switchyard/pubsub"
)

// TestSubscribeJoinRace: twenty processes join a new group at the same
// moment, ten times over. On RabbitMQ 3.x a consumer that attaches to a
// quorum queue whose Raft member has not started yet makes the broker close
// the whole connection with INTERNAL_ERROR (541); this happened to 18 of
// 200 joins, and took down every other subscription on that connection.
// Now every Subscribe succeeds, the group works, and the processes' other
// subscriptions keep their connection: the probe that may meet the error
// runs on the admin connection, and Subscribe retries it.
func TestSubscribeJoinRace(t *testing.T) {
	ctx := testCtx(t)
	const clients, rounds, perRound = 20, 10, 20
	rawURL := testURL(t, "")
	bystanders := uniqueTopic(t, "bystander")
	type member struct {
		c    *pubsub.Client
		logs *testlog.Buffer
	}
	members := make([]member, clients)
	seen := newCollector()
	for i := range members {
		logger, logs := bufferLogger()
		members[i] = member{openTest(t, rawURL, pubsub.WithLogger(logger)), logs}
		subscribe(t, ctx, members[i].c, bystanders, "bystander", seen.handler)
	}

	failures := 0
	for round := range rounds {
		topic := fmt.Sprintf("%s-r%d", uniqueTopic(t, "joined"), round)
		got := newCollector()
		subs := make([]*pubsub.Subscription, clients)
		errs := make([]error, clients)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range members {
			wg.Go(func() {
				<-start
				subs[i], errs[i] = members[i].c.Subscribe(ctx, topic, "joined", got.handler)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				failures++
				t.Errorf("round %d, member %d: %v", round, i, err)
			}
		}
		msgs := newMessages(fmt.Sprintf("r%d", round), perRound)
		require.NoError(t, members[0].c.Publish(ctx, topic, msgs...))
		got.waitN(t, perRound)
		calls := got.quiet(100 * time.Millisecond)
		assert.Equal(t, ids(msgs), gotIDs(calls), "round %d: the group gets each message once", round)
		for _, s := range subs {
			if s != nil {
				require.NoError(t, s.Close())
			}
		}
		deleteTopology(t, rawURL, map[string][]string{topic: {"joined"}})
	}
	assert.Zero(t, failures, "failed joins out of %d", clients*rounds)

	// The bystanders were not disturbed: only admin connections were lost.
	adminLosses := 0
	for i, m := range members {
		for _, line := range strings.Split(m.logs.String(), "\n") {
			if !strings.Contains(line, "connection lost") {
				continue
			}
			if assert.Contains(t, line, "connection=admin", "member %d", i) {
				adminLosses++
			}
		}
	}
	t.Logf("%d joins, %d failed; admin connections lost and restored: %d", clients*rounds, failures, adminLosses)
	require.NoError(t, members[0].c.Publish(ctx, bystanders, &pubsub.Message{ID: "still-there"}))
	call := seen.waitN(t, 1)[0]
	assert.Equal(t, "still-there", call.msg.ID)
	assert.Equal(t, 1, call.msg.Attempt)
	assert.Len(t, seen.quiet(100*time.Millisecond), 1)
}
