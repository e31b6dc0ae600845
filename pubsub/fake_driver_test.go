package pubsub_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// The tests of the portable layer drive it through a scripted driver, to
// check exactly what it asks of the broker. Transports are tested against
// real brokers by transport/transporttest.

// settlement is one settling call a fake delivery received.
type settlement struct {
	id      string
	kind    string        // ack, retry, release, deadletter
	delay   time.Duration // retry
	attempt int           // retry: the next Attempt
	dl      *driver.Message
}

type fakeBroker struct {
	mu            sync.Mutex
	queue         chan *fakeDelivery
	receiveErrs   []error // returned by Receive before any delivery
	settled       []settlement
	settledCh     chan struct{}
	sent          map[string][]*driver.Message
	sendErr       error
	deadLetterErr error // returned by DeadLetter while set
	ackErr        error // returned by Ack
	deadLetters   int   // DeadLetter calls
	subsClosed    int
	closed        bool
	checkErr      error
	namesErr      error
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{queue: make(chan *fakeDelivery, 100), settledCh: make(chan struct{}, 100), sent: map[string][]*driver.Message{}}
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// client returns a Client on f with a quiet logger and opts; it is closed
// with t.
func (f *fakeBroker) client(t *testing.T, opts ...pubsub.BrokerOption) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), func(context.Context, driver.Env) (driver.Broker, error) { return f, nil },
		append([]pubsub.BrokerOption{pubsub.WithLogger(quietLog)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// start subscribes to orders/billing with concurrency 1 and opts.
func (f *fakeBroker) start(t *testing.T, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Client, *pubsub.Subscription) {
	t.Helper()
	c := f.client(t)
	sub, err := c.Subscribe(context.Background(), "orders", "billing", h, append([]pubsub.SubscribeOption{pubsub.WithConcurrency(1)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return c, sub
}

func (f *fakeBroker) deliver(id string, attempt int) {
	f.queue <- &fakeDelivery{f: f, msg: &driver.Message{ID: id, Attempt: attempt, Payload: []byte(id), Metadata: map[string]string{"app": "v"}}}
}

func (f *fakeBroker) record(s settlement) {
	f.mu.Lock()
	f.settled = append(f.settled, s)
	f.mu.Unlock()
	f.settledCh <- struct{}{}
}

func (f *fakeBroker) waitSettled(t *testing.T, n int) []settlement {
	t.Helper()
	for range n {
		select {
		case <-f.settledCh:
		case <-time.After(5 * time.Second):
			t.Fatalf("waited for %d settlements, got %v", n, f.snapshot())
		}
	}
	return f.snapshot()
}

func (f *fakeBroker) snapshot() []settlement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.settled)
}

func (f *fakeBroker) ValidateNames(string, string) error { return f.namesErr }
func (f *fakeBroker) CheckMessage(*driver.Message) error { return f.checkErr }

func (f *fakeBroker) SendBatch(_ context.Context, topic string, msgs []*driver.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("fake: send after Close")
	}
	if f.sendErr != nil {
		return f.sendErr
	}
	for _, m := range msgs {
		c := *m
		f.sent[topic] = append(f.sent[topic], &c)
	}
	return nil
}

func (f *fakeBroker) CreateGroup(context.Context, string, string) error { return nil }
func (f *fakeBroker) DeleteGroup(context.Context, string, string) error { return nil }

func (f *fakeBroker) Subscribe(context.Context, string, string, driver.SubscribeConfig) (driver.Subscription, error) {
	return &fakeSub{f: f, closed: make(chan struct{})}, nil
}

func (f *fakeBroker) ListDeadLetters(context.Context, string, string, int) ([]*driver.Message, error) {
	return nil, nil
}
func (f *fakeBroker) ReplayDeadLetters(context.Context, string, string, []string) (int, error) {
	return 0, nil
}
func (f *fakeBroker) PurgeDeadLetters(context.Context, string, string, []string) (int, error) {
	return 0, nil
}
func (f *fakeBroker) Ping(context.Context) error { return nil }
func (f *fakeBroker) As(any) bool                { return false }

func (f *fakeBroker) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

type fakeSub struct {
	f      *fakeBroker
	once   sync.Once
	closed chan struct{}
}

func (s *fakeSub) Receive(ctx context.Context) (driver.Delivery, error) {
	f := s.f
	f.mu.Lock()
	if len(f.receiveErrs) > 0 {
		err := f.receiveErrs[0]
		f.receiveErrs = f.receiveErrs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	select {
	case d := <-f.queue:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, pubsub.ErrClosed
	}
}

func (s *fakeSub) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.f.mu.Lock()
		s.f.subsClosed++
		s.f.mu.Unlock()
	})
	return nil
}

type fakeDelivery struct {
	f   *fakeBroker
	msg *driver.Message
}

func (d *fakeDelivery) Message() *driver.Message {
	c := (*pubsub.Message)(d.msg).Clone()
	return (*driver.Message)(c)
}

func (d *fakeDelivery) Ack(context.Context) error {
	d.f.record(settlement{id: d.msg.ID, kind: "ack"})
	return d.f.ackErr
}

func (d *fakeDelivery) Retry(_ context.Context, delay time.Duration, attempt int) error {
	d.f.record(settlement{id: d.msg.ID, kind: "retry", delay: delay, attempt: attempt})
	return nil
}

func (d *fakeDelivery) Release(context.Context) error {
	d.f.record(settlement{id: d.msg.ID, kind: "release"})
	return nil
}

func (d *fakeDelivery) DeadLetter(_ context.Context, dl *driver.Message) error {
	d.f.mu.Lock()
	d.f.deadLetters++
	err := d.f.deadLetterErr
	d.f.mu.Unlock()
	if err != nil {
		return err
	}
	d.f.record(settlement{id: d.msg.ID, kind: "deadletter", dl: dl})
	return nil
}
