//go:build reliability

package rabbitmq

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/rabbitnode"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Case 4 of the reliability suite (issue 15), RabbitMQ part: a handler that
// outlives the broker's consumer_timeout.
//
//	go test -race -tags reliability -run TestConsumerTimeout -v ./transport/rabbitmq
//
// An own RabbitMQ node (internal/rabbitnode) runs with consumer_timeout =
// 10000 (10 s) and a channel tick of 1 s (RabbitMQ checks the timeout on
// each tick, every 60 s by default). A handler runs until RabbitMQ has
// closed its consumer's channel (PRECONDITION_FAILED, delivery
// acknowledgement timed out) and returned its message, which is delivered
// again. The test asserts what the package documentation says under
// "Delivery semantics":
//
//   - concurrency 2, the handler succeeds: the redelivery reaches the
//     subscription while the first run still runs; it is held back, not
//     run, and acked in the first run's place: one run, outcome acked.
//   - concurrency 2, the handler fails: its retry fails on the closed
//     channel (OutcomeSettleFailed) and the held redelivery is handled
//     after the first run, with Attempt 2, never at the same time.
//   - concurrency 1 (no free slot for the redelivery), the handler
//     succeeds: its ack is lost with the channel (OutcomeSettleFailed),
//     and the redelivery that follows is acked without running the handler.
//
// In every case the subscription consumes again by itself, nothing is
// lost, and the group's queue ends empty.
func TestConsumerTimeout(t *testing.T) {
	node := rabbitnode.StartWith(t, rabbitnode.Options{
		Config:   []string{"consumer_timeout = 10000"},
		Advanced: `[{rabbit, [{channel_tick_interval, 1000}]}].`,
	})
	u, err := url.Parse(node.URL())
	require.NoError(t, err)

	for _, tc := range []struct {
		name        string
		concurrency int
		fail        bool   // the first run returns an error
		signal      string // log message after which the first run returns
		runs        []int  // Attempt of each run of the slow message
		outcome     pubsub.Outcome
	}{
		{"held redelivery acked", 2, false, "holding the redelivery", []int{1}, pubsub.OutcomeAcked},
		{"held redelivery run after a failure", 2, true, "holding the redelivery", []int{1, 2}, pubsub.OutcomeSettleFailed},
		{"redelivery after a lost ack skipped", 1, false, "consumer channel closed by the broker", []int{1}, pubsub.OutcomeSettleFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			logs := newLogWatch()
			var (
				mu      sync.Mutex
				runs    []int // Attempt of each run of "slow"
				active  int   // runs of "slow" in progress
				overlap bool  // two runs of "slow" at once
				settled = map[string][]pubsub.Settlement{}
				changed = make(chan struct{}, 1)
			)
			notify := func() {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			obs := pubsub.Observer{OnSettle: func(_ context.Context, s pubsub.Settlement) {
				mu.Lock()
				settled[s.Message.ID] = append(settled[s.Message.ID], s)
				mu.Unlock()
				notify()
			}}
			c, err := OpenURL(ctx, u, pubsub.WithLogger(slog.New(logs)), pubsub.WithObserver(obs))
			require.NoError(t, err)
			defer c.Close()
			topic := "slow-" + strings.ReplaceAll(tc.name, " ", "-")
			const group = "g"
			require.NoError(t, c.CreateGroup(ctx, topic, group))
			_, err = c.Subscribe(ctx, topic, group, func(hctx context.Context, m *pubsub.Message) error {
				if m.ID != "slow" {
					return nil
				}
				mu.Lock()
				runs = append(runs, m.Attempt)
				active++
				overlap = overlap || active > 1
				n := len(runs)
				mu.Unlock()
				defer func() {
					mu.Lock()
					active--
					mu.Unlock()
				}()
				if n > 1 {
					return nil
				}
				if err := logs.wait(hctx, tc.signal, 90*time.Second); err != nil {
					return err
				}
				if tc.fail {
					return errors.New("failed after the broker's timeout")
				}
				return nil
			}, pubsub.WithConcurrency(tc.concurrency), pubsub.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
			require.NoError(t, err)

			start := time.Now()
			require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "slow", Payload: []byte("x")}))
			// Then another message, which must flow as usual.
			require.NoError(t, logs.wait(ctx, tc.signal, 90*time.Second), "the broker's timeout passed")
			reclaimed := time.Since(start)
			require.NoError(t, c.Publish(ctx, topic, &pubsub.Message{ID: "after", Payload: []byte("y")}))

			// Wait for the final settlement of slow and for after.
			deadline := time.After(90 * time.Second)
			for {
				mu.Lock()
				s := settled["slow"]
				done := len(settled["after"]) == 1 && len(s) > 0 && (s[len(s)-1].Outcome == pubsub.OutcomeAcked || s[len(s)-1].Outcome == pubsub.OutcomeSettleFailed)
				mu.Unlock()
				if done {
					break
				}
				select {
				case <-changed:
				case <-deadline:
					require.FailNow(t, "timed out", "settlements %v, logs %q", settled, logs.all())
				}
			}
			if tc.concurrency == 1 {
				require.NoError(t, logs.wait(ctx, "acked the redelivery of a message already handled", 90*time.Second))
			}
			// The queue ends empty: nothing lost, nothing held.
			q := groupQueueName(topic, group)
			for {
				out, err := node.Ctl(ctx, "list_queues", "--no-table-headers", "name", "messages")
				require.NoError(t, err)
				if strings.TrimSpace(lineOf(out, q)) == q+"\t0" {
					break
				}
				require.NoError(t, ctx.Err(), "queue %s: %s", q, lineOf(out, q))
				time.Sleep(200 * time.Millisecond) // polling rabbitmqctl, not synchronisation
			}

			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tc.runs, runs, "runs of slow (their Attempts)")
			assert.False(t, overlap, "two runs of slow at once")
			assert.Equal(t, tc.outcome, settled["slow"][0].Outcome, "first settlement of slow: %v", settled["slow"][0].Err)
			assert.Equal(t, pubsub.OutcomeAcked, settled["after"][0].Outcome)
			t.Logf("message reclaimed by the broker %v after delivery (consumer_timeout 10s, channel tick 1s); runs %v; settlements of slow: %v", reclaimed.Round(time.Millisecond), runs, outcomes(settled["slow"]))
		})
	}
}

func outcomes(ss []pubsub.Settlement) []string {
	var out []string
	for _, s := range ss {
		text := s.Outcome.String()
		if s.Err != nil {
			text += " (" + s.Err.Error() + ")"
		}
		out = append(out, text)
	}
	return out
}

// logWatch is a slog.Handler that keeps the messages logged and lets a test
// wait for one.
type logWatch struct {
	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *logWatch) WithGroup(string) slog.Handler            { return w }
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	w.msgs = append(w.msgs, r.Message)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	return nil
}

func (w *logWatch) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// wait returns once a message containing substr was logged, or an error
// after timeout or when ctx ends.
func (w *logWatch) wait(ctx context.Context, substr string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		for _, m := range w.msgs {
			if strings.Contains(m, substr) {
				w.mu.Unlock()
				return nil
			}
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return errors.New("no log message containing " + substr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
