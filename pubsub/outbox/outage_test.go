package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
	"github.com/switchyard-go/switchyard/transport/memory"
)

// outageLength is how long the broker is down in TestBrokerDown: 10s, or
// 2s with -short.
func outageLength() time.Duration {
	if testing.Short() {
		return 2 * time.Second
	}
	return 10 * time.Second
}

// TestBrokerDown: while the broker refuses every Publish (for 10s),
// transactions keep committing; when it is back, the backlog drains, with
// every message published and per-key order kept. The in-process broker
// cannot go down, so a Publisher wrapper refuses in its place; the
// RabbitMQ variant (rabbitmq_test.go) cuts a real connection.
func TestBrokerDown(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := d.open(t)
			require.NoError(t, outbox.Migrate(ctx, db, outbox.Config{}))
			b := newBroker(t, memory.Config{})
			topic := topicName(t)
			got := collect(t, b, topic, "g", 4)
			sw := &switchable{Publisher: b}
			ob := newOutbox(t, db, sw, outbox.Config{})
			startRelay(t, ob)

			o := brokerOutage(t, db, ob, topic, got, func(down bool) { sw.down.Store(down) })
			assert.Positive(t, sw.refused.Load(), "publishes refused during the outage")
			t.Logf("%s: %s", d.name, o)
		})
	}
}

// outage is what brokerOutage saw.
type outage struct {
	committed, during, backlog int
	maxCommit                  time.Duration
	drain                      time.Duration
	duplicates                 int
}

func (o outage) String() string {
	return fmt.Sprintf("committed %d messages (%d during the outage, slowest commit then %v), backlog at return %d, drained in %v, %d duplicate deliveries",
		o.committed, o.during, o.maxCommit.Round(time.Millisecond), o.backlog, o.drain.Round(time.Millisecond), o.duplicates)
}

// brokerOutage commits a message every 2ms through ob, on 20 keys, for
// 300ms, then with the broker down (setDown) for outageLength, then for
// 300ms with it back up; it checks that every commit succeeded and that
// every message arrives at got, in commit order per key.
func brokerOutage(t *testing.T, db *sql.DB, ob *outbox.Outbox, topic string, got *collector, setDown func(bool)) outage {
	t.Helper()
	ctx := context.Background()
	var (
		o        outage
		isDown   atomic.Bool
		mu       sync.Mutex
		order    = map[string][]string{}
		stopW    = make(chan struct{})
		writerWG sync.WaitGroup
		werr     error
	)
	writerWG.Add(1)
	go func() {
		defer writerWG.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopW:
				return
			case <-tick.C:
			}
			m := &pubsub.Message{Key: "k" + strconv.Itoa(i%20), Payload: []byte(strconv.Itoa(i))}
			start := time.Now()
			tx, err := db.BeginTx(ctx, nil)
			if err == nil {
				err = ob.Publish(ctx, tx, topic, m)
				if err == nil {
					err = tx.Commit()
				} else {
					_ = tx.Rollback()
				}
			}
			if err != nil {
				werr = err
				return
			}
			took := time.Since(start)
			mu.Lock()
			order[m.Key] = append(order[m.Key], m.ID)
			o.committed++
			if isDown.Load() {
				o.during++
				o.maxCommit = max(o.maxCommit, took)
			}
			mu.Unlock()
		}
	}()

	time.Sleep(300 * time.Millisecond) // traffic before the outage
	setDown(true)
	isDown.Store(true)
	time.Sleep(outageLength())
	mu.Lock()
	before := o.committed
	mu.Unlock()
	o.backlog = before - got.unique()
	isDown.Store(false)
	setDown(false)
	back := time.Now()
	time.Sleep(300 * time.Millisecond) // traffic after it
	close(stopW)
	writerWG.Wait()
	require.NoError(t, werr, "a transaction failed")

	got.waitUnique(t, o.committed, time.Minute)
	o.drain = time.Since(back)
	o.duplicates = got.duplicates()
	seen := firstSeen(got.snapshot())
	for k, want := range order {
		assert.Equal(t, want, seen[k], "key %s in commit order", k)
	}
	assert.Positive(t, o.during, "commits during the outage")
	assert.Greater(t, o.backlog, o.during/2, "the outage left a backlog")
	require.Eventually(t, func() bool {
		p, err := ob.Pending(ctx)
		return err == nil && p.Rows == 0
	}, 10*time.Second, 5*time.Millisecond, "rows left pending")
	return o
}
