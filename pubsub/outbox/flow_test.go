package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/outbox"
)

// flow is what writers stored: the committed messages of each key in
// commit order, and the IDs of the rolled-back ones.
type flow struct {
	mu         sync.Mutex
	order      map[string][]string // key → committed IDs, in commit order
	committed  map[string]bool
	rolledBack map[string]bool
}

// write stores at least n committed messages to topic through ob, from
// writers concurrent transactions of 1 to 3 messages each on random keys
// out of keys; one transaction in ten is rolled back. It blocks until
// done.
//
// The commit order of a key is recorded between Publish and Commit: Publish
// holds the key (PostgreSQL: its advisory lock; SQLite: the write lock)
// until the transaction ends, so no other transaction of the key can record
// in between.
func write(t *testing.T, db *sql.DB, ob *outbox.Outbox, topic string, n, writers, keys int) *flow {
	t.Helper()
	f := &flow{order: map[string][]string{}, committed: map[string]bool{}, rolledBack: map[string]bool{}}
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for seq := 0; left.Load() > 0; seq++ {
				msgs := make([]*pubsub.Message, 1+rand.IntN(3))
				for i := range msgs {
					msgs[i] = &pubsub.Message{
						Key:     fmt.Sprintf("k%02d", rand.IntN(keys)),
						Payload: fmt.Appendf(nil, "w%d-%d-%d", w, seq, i),
					}
				}
				rollback := rand.IntN(10) == 0
				if err := f.tx(ctx, db, ob, topic, msgs, rollback); err != nil {
					errs <- err
					return
				}
				if !rollback {
					left.Add(-int64(len(msgs)))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return f
}

func (f *flow) tx(ctx context.Context, db *sql.DB, ob *outbox.Outbox, topic string, msgs []*pubsub.Message, rollback bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := ob.Publish(ctx, tx, topic, msgs...); err != nil {
		_ = tx.Rollback()
		return err
	}
	f.mu.Lock()
	for _, m := range msgs {
		if rollback {
			f.rolledBack[m.ID] = true
		} else {
			f.order[m.Key] = append(f.order[m.Key], m.ID)
			f.committed[m.ID] = true
		}
	}
	f.mu.Unlock()
	if rollback {
		return tx.Rollback()
	}
	return tx.Commit()
}

// check asserts that got holds every committed message and no rolled-back
// one, and that each key's messages first arrived in commit order. It
// returns the number of duplicate deliveries.
func (f *flow) check(t *testing.T, got *collector) (duplicates int) {
	t.Helper()
	msgs := got.snapshot()
	received := map[string]bool{}
	for _, m := range msgs {
		received[m.ID] = true
		assert.False(t, f.rolledBack[m.ID], "rolled-back message %s was published", m.ID)
	}
	missing := 0
	for id := range f.committed {
		if !received[id] {
			missing++
		}
	}
	assert.Zero(t, missing, "committed messages never published")
	assert.Len(t, received, len(f.committed), "distinct messages received")
	seen := firstSeen(msgs)
	for key, want := range f.order {
		if !slices.Equal(seen[key], want) {
			t.Errorf("key %s: first arrivals %d messages, out of commit order (want %d in order)", key, len(seen[key]), len(want))
		}
	}
	return len(msgs) - len(received)
}
