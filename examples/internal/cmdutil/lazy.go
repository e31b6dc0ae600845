package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/internal/redact"
	"github.com/switchyard-go/switchyard/pubsub"
)

// ErrNotConnected is returned by a LazyBroker's calls until its broker is
// open.
var ErrNotConnected = errors.New("broker not connected yet")

// LazyBroker is a publisher and subscriber whose broker is opened in the background,
// retrying until it answers, so that a service can start (and accept work
// into its outbox) while the broker is unreachable. Until then Publish,
// CreateGroup and Ping fail with ErrNotConnected (readiness reports it);
// afterwards they are the broker's. It is safe for concurrent use.
type LazyBroker struct {
	ready  chan struct{} // closed once b is set
	mu     sync.Mutex
	b      pubsub.Broker
	last   error
	cancel context.CancelFunc
	done   chan struct{}
}

// Open is what a LazyBroker calls to open its broker.
type Open func(ctx context.Context) (pubsub.Broker, error)

// NewLazyBroker starts opening a broker with open, retrying failures with
// backoff (200ms doubling to 10s, with jitter) and logging each at Warn,
// until it succeeds or Close is called.
func NewLazyBroker(open Open, url string, log *slog.Logger) *LazyBroker {
	ctx, cancel := context.WithCancel(context.Background())
	l := &LazyBroker{ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go l.connect(ctx, open, url, log)
	return l
}

func (l *LazyBroker) connect(ctx context.Context, open Open, url string, log *slog.Logger) {
	defer close(l.done)
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		b, err := open(ctx)
		if err == nil {
			l.mu.Lock()
			l.b = b
			l.mu.Unlock()
			close(l.ready)
			if attempt > 1 {
				log.Info("broker connected", "url", redact.URL(url), "attempts", attempt)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.last = err
		l.mu.Unlock()
		log.Warn("broker unreachable; retrying in the background", "url", redact.URL(url), "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// Broker returns the broker once open, or nil and an error wrapping
// ErrNotConnected (with the last failure).
func (l *LazyBroker) Broker() (pubsub.Broker, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b != nil {
		return l.b, nil
	}
	if l.last != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotConnected, l.last)
	}
	return nil, ErrNotConnected
}

// Ready is closed once the broker is open.
func (l *LazyBroker) Ready() <-chan struct{} { return l.ready }

// Publish implements pubsub.Publisher.
func (l *LazyBroker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	b, err := l.Broker()
	if err != nil {
		return err
	}
	return b.Publish(ctx, topic, msgs...)
}

// CreateGroup implements pubsub.GroupCreator (when the broker does).
func (l *LazyBroker) CreateGroup(ctx context.Context, topic, group string) error {
	b, err := l.Broker()
	if err != nil {
		return err
	}
	gc, ok := b.(pubsub.GroupCreator)
	if !ok {
		return nil
	}
	return gc.CreateGroup(ctx, topic, group)
}

// Subscribe implements pubsub.Subscriber: ErrNotConnected until the broker
// is open (callers that can wait try again), then the broker's Subscribe.
func (l *LazyBroker) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	b, err := l.Broker()
	if err != nil {
		return nil, err
	}
	return b.Subscribe(ctx, topic, group, h, opts...)
}

// DeleteGroup implements pubsub.GroupDeleter: ErrNotConnected until the
// broker is open, then the broker's DeleteGroup.
func (l *LazyBroker) DeleteGroup(ctx context.Context, topic, group string) error {
	b, err := l.Broker()
	if err != nil {
		return err
	}
	gd, ok := b.(pubsub.GroupDeleter)
	if !ok {
		return fmt.Errorf("%T cannot delete groups: %w", b, errors.ErrUnsupported)
	}
	return gd.DeleteGroup(ctx, topic, group)
}

// Ping implements pubsub.Pinger: ErrNotConnected until the broker is open,
// then its Ping (nil if it has none).
func (l *LazyBroker) Ping(ctx context.Context) error {
	b, err := l.Broker()
	if err != nil {
		return err
	}
	if p, ok := b.(pubsub.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Close stops connecting and closes the broker if it is open.
func (l *LazyBroker) Close() error {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b != nil {
		return l.b.Close()
	}
	return nil
}
