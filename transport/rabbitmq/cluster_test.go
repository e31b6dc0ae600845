//go:build reliability

package rabbitmq

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/rabbitnode"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Case 1 of the reliability suite (issue 15): RabbitMQ cluster failover.
//
//	go test -race -tags reliability -run TestClusterFailover -v ./transport/rabbitmq
//
// Three RabbitMQ nodes of this machine's installation (internal/rabbitnode:
// own names, ports and directories; the machine's node on 5672 is not
// touched) form a cluster; clients connect with the three addresses in
// their URL. Publishers send SWITCHYARD_FAILOVER_MESSAGES messages
// (default 20,000, which fits CI's time on a 2-core machine; the issue's
// 100,000 take about 5 minutes there:
// SWITCHYARD_FAILOVER_MESSAGES=100000 go test ... -timeout 20m) in
// confirmed batches while one member of each of two groups consumes. When a
// quarter is confirmed, the node leading group a's quorum queue is stopped
// (rabbitmqctl stop) and started again; once it is back and has rejoined
// (both queues have three members online), the node then leading group b's
// queue is stopped and started again. So that both stops happen
// mid-stream and messages are sent after each, publishers wait before the
// second half until the first stopped node has exited, and before the
// last quarter until the second has. A Publish error is retried by the test's
// publisher (counted as an unconfirmed attempt), never counted as sent.
// The test asserts that every confirmed message reached each group (lost
// 0), and reports duplicates and, per group, the time to recover: from the
// stopped node's exit to the first delivery of a message first sent after
// it.
//
// Found by this test with 100,000 messages (1 run of 2): when the stopped
// node held a subscription's admin connection as well as its consume
// connection, the subscription never consumed again, and Close hung:
// amqp091's reader for the admin connection was blocked handing a
// basic.consume-ok to an admin channel on which no call waited, and the
// admin operations, which had no deadline, waited on it for ever. Admin
// operations and consumer starts that have no answer within ConfirmTimeout
// now cut their connection (TestAdminConnectionStrayReply).
func TestClusterFailover(t *testing.T) {
	total := 20_000
	if v := os.Getenv("SWITCHYARD_FAILOVER_MESSAGES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "SWITCHYARD_FAILOVER_MESSAGES")
		total = n
	}
	const (
		publishers = 4
		batch      = 100
		prefetch   = 200
		members    = 1 // per group
	)
	start := time.Now()
	nodes := rabbitnode.Cluster(t, 3)
	t.Logf("cluster of 3 nodes up in %v", time.Since(start).Round(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// urlFrom lists the nodes beginning with nodes[first], so that the
	// clients start on different nodes.
	urlFrom := func(first int) *url.URL {
		var hosts []string
		for k := range nodes {
			hosts = append(hosts, nodes[(first+k)%len(nodes)].Addr())
		}
		u, err := url.Parse("amqp://guest:guest@" + strings.Join(hosts, ",") + "/?confirm_timeout=20s&connect_timeout=5s&prefetch=" + strconv.Itoa(prefetch))
		require.NoError(t, err)
		return u
	}
	open := func(first int) *pubsub.Client {
		c, err := OpenURL(ctx, urlFrom(first), pubsub.WithLogger(testLogger()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	topic := "failover"
	groups := []string{"a", "b"}
	pub := open(0)
	for _, g := range groups {
		require.NoError(t, pub.CreateGroup(ctx, topic, g))
	}
	for _, g := range groups {
		members, err := nodes[0].Ctl(ctx, "list_queues", "--no-table-headers", "name", "members")
		require.NoError(t, err)
		line := lineOf(members, groupQueueName(topic, g))
		for _, n := range nodes {
			assert.Contains(t, line, n.Name, "group %s's quorum queue has a member on every node", g)
		}
	}

	// Consumers.
	type groupState struct {
		mu         sync.Mutex
		seen       map[string]int
		deliveries int
		notify     chan struct{}
		since      atomic.Int64 // unix nanos of the last stop
		firstAfter atomic.Int64 // unix nanos of the first delivery of a message first sent after it
	}
	state := map[string]*groupState{}
	for i, g := range groups {
		gs := &groupState{seen: map[string]int{}, notify: make(chan struct{}, 1)}
		state[g] = gs
		c := open(1 + i)
		_, err := c.Subscribe(ctx, topic, g, func(_ context.Context, m *pubsub.Message) error {
			sent, _ := strconv.ParseInt(m.Metadata["sent"], 10, 64)
			if s := gs.since.Load(); s != 0 && sent > s {
				gs.firstAfter.CompareAndSwap(0, time.Now().UnixNano())
			}
			gs.mu.Lock()
			gs.seen[m.ID]++
			gs.deliveries++
			gs.mu.Unlock()
			select {
			case gs.notify <- struct{}{}:
			default:
			}
			return nil
		}, pubsub.WithConcurrency(20))
		require.NoError(t, err)
	}

	// Publishers: each sends its share in batches, retrying a batch until
	// Publish returns nil.
	var (
		confirmed   atomic.Int64
		unconfirmed atomic.Int64 // messages of failed Publish calls
		pubErrs     sync.Map     // error text -> count, for the log
		progress    = make(chan struct{}, 1)
		pubDone     = make(chan struct{})
	)
	stopped := []chan struct{}{make(chan struct{}), make(chan struct{})} // closed when the node of stop i has exited
	pubStart := time.Now()
	var pubWG sync.WaitGroup
	for p := range publishers {
		pubWG.Go(func() {
			for first := p * batch; first < total; first += publishers * batch {
				for i, at := range []int{total / 2, total * 3 / 4} {
					if first >= at {
						select {
						case <-stopped[i]:
						case <-ctx.Done():
							return
						}
					}
				}
				// Metadata "sent" is when the batch was first sent, so
				// that a delivery tells whether its message was sent
				// after a stop.
				var msgs []*pubsub.Message
				sent := strconv.FormatInt(time.Now().UnixNano(), 10)
				for i := first; i < min(first+batch, total); i++ {
					msgs = append(msgs, &pubsub.Message{ID: fmt.Sprintf("m-%06d", i), Payload: []byte("x"), Metadata: map[string]string{"sent": sent}})
				}
				for {
					if ctx.Err() != nil {
						return
					}
					err := pub.Publish(ctx, topic, msgs...)
					if err == nil {
						break
					}
					unconfirmed.Add(int64(len(msgs)))
					v, _ := pubErrs.LoadOrStore(err.Error(), new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				}
				confirmed.Add(int64(len(msgs)))
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	go func() { pubWG.Wait(); close(pubDone) }()

	waitConfirmed := func(n int64) {
		for confirmed.Load() < n {
			select {
			case <-progress:
			case <-pubDone:
				return
			case <-ctx.Done():
				return
			}
		}
	}

	type fault struct {
		queue, node        string
		at                 time.Time
		confirmedAtStop    int64
		down               time.Time // the node's process exited
		stopTook, downTook time.Duration
		recovery           map[string]time.Duration // per group: stop to first delivery of a message sent after it
	}
	var faults []*fault
	// settle records the recovery times of the last fault.
	settle := func() {
		if len(faults) == 0 {
			return
		}
		f := faults[len(faults)-1]
		f.recovery = map[string]time.Duration{}
		for g, gs := range state {
			if at := gs.firstAfter.Load(); at != 0 {
				f.recovery[g] = time.Duration(at - f.down.UnixNano())
			} else {
				f.recovery[g] = -1
			}
		}
	}
	failLeader := func(group string) {
		q := groupQueueName(topic, group)
		var asker *rabbitnode.Node
		for _, n := range nodes {
			if n.Running() {
				asker = n
				break
			}
		}
		leader, err := asker.QueueLeader(ctx, q)
		require.NoError(t, err)
		var victim *rabbitnode.Node
		for _, n := range nodes {
			if n.Name == leader {
				victim = n
			}
		}
		require.NotNil(t, victim, "leader %s is one of ours", leader)
		settle()
		f := &fault{queue: q, node: leader, at: time.Now(), confirmedAtStop: confirmed.Load()}
		require.NoError(t, victim.Stop(ctx))
		f.stopTook = time.Since(f.at)
		// Recovery counts from here: the node's process has exited.
		f.down = time.Now()
		for _, gs := range state {
			gs.firstAfter.Store(0)
			gs.since.Store(f.down.UnixNano())
		}
		// Publishers held at the gate go on now, so that messages are
		// sent after the exit however fast the rest was published.
		close(stopped[len(faults)])
		require.NoError(t, victim.Start(ctx))
		// Rejoined: every queue has its three members online again.
		for {
			out, err := victim.Ctl(ctx, "list_queues", "--no-table-headers", "name", "online")
			if err == nil && strings.Count(lineOf(out, groupQueueName(topic, "a")), "@") == 3 && strings.Count(lineOf(out, groupQueueName(topic, "b")), "@") == 3 {
				break
			}
			require.NoError(t, ctx.Err(), "node %s did not rejoin: %v %s", leader, err, out)
			time.Sleep(500 * time.Millisecond) // polling rabbitmqctl, not synchronisation
		}
		f.downTook = time.Since(f.at)
		faults = append(faults, f)
	}
	waitConfirmed(int64(total) / 4)
	failLeader("a")
	waitConfirmed(int64(total) / 2)
	failLeader("b")

	<-pubDone
	pubTook := time.Since(pubStart)
	require.NoError(t, ctx.Err())
	require.EqualValues(t, total, confirmed.Load())

	// Every confirmed message must reach each group.
	for _, g := range groups {
		gs := state[g]
		deadline := time.After(3 * time.Minute)
	wait:
		for {
			gs.mu.Lock()
			n := len(gs.seen)
			gs.mu.Unlock()
			if n >= total {
				break
			}
			select {
			case <-gs.notify:
			case <-deadline:
				break wait
			}
		}
	}
	took := time.Since(pubStart)
	// When a group misses messages, show what the broker holds and where
	// the client's goroutines are, before the nodes go.
	for _, g := range groups {
		gs := state[g]
		gs.mu.Lock()
		missing := total - len(gs.seen)
		gs.mu.Unlock()
		if missing == 0 {
			continue
		}
		for _, n := range nodes {
			out, err := n.Ctl(ctx, "list_queues", "name", "messages_ready", "messages_unacknowledged", "consumers", "leader", "online")
			t.Logf("group %s misses %d messages; queues on %s: %v\n%s", g, missing, n.Name, err, out)
			out, err = n.Ctl(ctx, "list_consumers", "queue_name", "channel_pid", "ack_required", "prefetch_count", "active")
			t.Logf("consumers on %s: %v\n%s", n.Name, err, out)
		}
		f, err := os.CreateTemp("", "swy-failover-goroutines-*.txt")
		if err == nil {
			_ = pprof.Lookup("goroutine").WriteTo(f, 2)
			_ = f.Close()
			t.Logf("goroutine dump: %s", f.Name())
		}
		break
	}
	settle()

	pubErrs.Range(func(k, v any) bool {
		t.Logf("publish error x%d: %s", v.(*atomic.Int64).Load(), k)
		return true
	})
	for i, f := range faults {
		rec := func(g string) string {
			if f.recovery[g] < 0 {
				return "none"
			}
			return f.recovery[g].Round(time.Millisecond).String()
		}
		t.Logf("fault %d: stopped %s (leader of %s) at %d confirmed; stop took %v; back and rejoined after %v; time to recover (from the node's exit to the first delivery of a message first sent after it): group a %s, group b %s",
			i+1, f.node, f.queue, f.confirmedAtStop, f.stopTook.Round(time.Millisecond), f.downTook.Round(time.Millisecond), rec("a"), rec("b"))
		for _, g := range groups {
			assert.GreaterOrEqual(t, f.recovery[g], time.Duration(0), "group %s got messages sent after stop %d", g, i+1)
		}
	}
	// The bound on duplicates: republished messages (the test's retries,
	// and the transport's own republishing of unconfirmed messages when a
	// connection is lost, at most a batch per publisher per lost
	// connection), and the prefetched messages of a member whose
	// connection is lost (at most prefetch per loss), two losses per fault.
	bound := int(unconfirmed.Load()) + 2*len(faults)*(publishers*batch+members*prefetch)
	for _, g := range groups {
		gs := state[g]
		gs.mu.Lock()
		lost, dups := 0, 0
		for i := range total {
			c := gs.seen[fmt.Sprintf("m-%06d", i)]
			if c == 0 {
				lost++
			} else {
				dups += c - 1
			}
		}
		unique, deliveries := len(gs.seen), gs.deliveries
		gs.mu.Unlock()
		t.Logf("group %s: confirmed %d, received %d (%d deliveries), lost %d, duplicates %d (bound %d)", g, confirmed.Load(), unique, deliveries, lost, dups, bound)
		assert.Zero(t, lost, "group %s lost confirmed messages", g)
		assert.Equal(t, total, unique, "group %s received only confirmed IDs", g)
		assert.LessOrEqual(t, dups, bound, "group %s duplicates", g)
	}
	t.Logf("publish of %d messages (%d publishers, batches of %d) took %v (%d unconfirmed attempts); all received after %v; test %v",
		total, publishers, batch, pubTook.Round(time.Millisecond), unconfirmed.Load(), took.Round(time.Millisecond), time.Since(start).Round(time.Second))
}

// lineOf returns the line of rabbitmqctl's tab-separated output whose first
// column is name, or "".
func lineOf(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		if first, _, _ := strings.Cut(line, "\t"); first == name {
			return line
		}
	}
	return ""
}
