package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/internal/lifecycle"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Broker is a connection to RabbitMQ: it implements pubsub.Broker,
// pubsub.GroupCreator and pubsub.Pinger and is safe for concurrent use. It
// holds two AMQP connections, one for publishing and one for consuming (as
// RabbitMQ recommends, so that flow control on publishers never stalls
// consumers' acknowledgements), each re-established automatically when
// lost.
type Broker struct {
	cfg     Config
	pubLink *link
	subLink *link
	pub     *publisher
	subs    lifecycle.Subscriptions

	retryMu       sync.Mutex
	retryDeclared map[string]retryDecl // retry queue name → last declaration

	closeOnce sync.Once
}

var (
	_ pubsub.Broker       = (*Broker)(nil)
	_ pubsub.GroupCreator = (*Broker)(nil)
	_ pubsub.Pinger       = (*Broker)(nil)
)

// New connects to the broker at cfg.URL (see Config for the defaults) and
// returns a Broker. It blocks while connecting, for at most
// cfg.ConnectTimeout (default 10s) or until ctx ends; an unreachable broker
// is an error naming its host and port, never its password. The caller must
// Close the Broker.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	b := &Broker{cfg: cfg, retryDeclared: map[string]retryDecl{}}
	// Dial both connections at once, so that New takes one ConnectTimeout
	// at most.
	var (
		wg             sync.WaitGroup
		pubErr, subErr error
	)
	wg.Go(func() { b.pubLink, pubErr = newLink(ctx, &b.cfg, "publish") })
	wg.Go(func() { b.subLink, subErr = newLink(ctx, &b.cfg, "consume") })
	wg.Wait()
	if pubErr != nil || subErr != nil {
		for _, l := range []*link{b.pubLink, b.subLink} {
			if l != nil {
				_ = l.close()
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if pubErr != nil {
			return nil, pubErr // the same cause as subErr, if any
		}
		return nil, subErr
	}
	b.pub = newPublisher(b.pubLink)
	return b, nil
}

// OpenURL connects to the broker that u names, as New does:
//
//	amqp://USER:PASSWORD@HOST:PORT/VHOST?prefetch=512&queue_type=quorum
//	amqps://USER:PASSWORD@HOST:PORT/VHOST?cacertfile=/path/ca.pem
//
// The query parameters prefetch, queue_type (quorum or classic),
// confirm_timeout and connect_timeout (Go durations such as 30s) and
// max_message_bytes set the Config fields of those names; amqp091's
// heartbeat, channel_max, auth_mechanism, cacertfile, certfile, keyfile and
// server_name_indication are passed on. Any other parameter is an error.
// transport.Open calls it for amqp:// and amqps:// URLs.
func OpenURL(ctx context.Context, u *url.URL) (*Broker, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}

// Publish implements pubsub.Publisher. It declares the topic's exchange on
// first use, publishes every message (persistent) and returns once RabbitMQ
// confirmed each one; concurrent calls and the messages of a batch share
// their round-trips. While the connection is down, Publish waits for it to
// come back, and publishes again the messages whose confirmation was lost
// with it; all this is bounded by ctx and Config.ConfirmTimeout (default
// 30s), after which it returns an error and some messages may have been
// accepted. A topic without groups drops what is published to it (the
// broker confirms it all the same); create groups ahead with CreateGroup.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	if b.subs.Closed() {
		return pubsub.ErrClosed
	}
	if err := validateTopic(topic); err != nil {
		return err
	}
	if err := pubsub.CheckBatch("rabbitmq", topic, msgs, b.cfg.MaxMessageBytes, checkMessage); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	pubsub.AssignIDs(msgs)
	out := make([]amqp.Publishing, len(msgs))
	for i, m := range msgs {
		out[i] = toPublishing(m)
	}
	return b.withTimeout(ctx, "publish to "+topic, func(ctx context.Context) error {
		return b.pub.send(ctx, target{exchange: exchangeName(topic), declare: true}, out)
	})
}

// validateTopic is pubsub.ValidateTopic, and refuses the names that
// RabbitMQ reserves for itself (beginning with "amq.").
func validateTopic(topic string) error {
	if err := pubsub.ValidateTopic(topic); err != nil {
		return err
	}
	if strings.HasPrefix(topic, "amq.") {
		return fmt.Errorf("rabbitmq: topic %q: names beginning with \"amq.\" are reserved by RabbitMQ: %w", topic, pubsub.ErrInvalidTopic)
	}
	return nil
}

// errTimeout is wrapped by the errors of calls that ran out of
// Config.ConfirmTimeout; it is context.DeadlineExceeded.
var errTimeout = context.DeadlineExceeded

// withTimeout runs fn with ctx bounded by ConfirmTimeout. If ctx itself ends,
// its error is returned unwrapped; if the timeout does, an error saying so.
func (b *Broker) withTimeout(ctx context.Context, what string, fn func(context.Context) error) error {
	tctx, cancel := context.WithTimeout(ctx, b.cfg.ConfirmTimeout)
	defer cancel()
	err := fn(tctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case tctx.Err() != nil && errors.Is(err, tctx.Err()):
		return fmt.Errorf("rabbitmq: %s: no answer from the broker within %v (confirm timeout): %w", what, b.cfg.ConfirmTimeout, errTimeout)
	case errors.Is(err, pubsub.ErrClosed) && b.subs.Closed():
		return pubsub.ErrClosed
	}
	return err
}

// CreateGroup implements pubsub.GroupCreator: it declares the topic's
// exchange and the group's queue bound to it (see the package documentation
// for names and arguments). It waits for the broker as Publish does.
func (b *Broker) CreateGroup(ctx context.Context, topic, group string) error {
	if b.subs.Closed() {
		return pubsub.ErrClosed
	}
	if err := validateTopic(topic); err != nil {
		return err
	}
	if err := pubsub.ValidateGroup(group); err != nil {
		return err
	}
	return b.createGroup(ctx, topic, group)
}

func (b *Broker) createGroup(ctx context.Context, topic, group string) error {
	return b.withTimeout(ctx, fmt.Sprintf("create group %s of %s", group, topic), func(ctx context.Context) error {
		err := b.pub.admin.do(ctx, func(ch *amqp.Channel) error { return declareGroup(ch, b.cfg.QueueType, topic, group) })
		if err != nil && isSoftErr(err) {
			return fmt.Errorf("rabbitmq: declare queue %q bound to exchange %q: %w", groupQueueName(topic, group), exchangeName(topic), err)
		}
		return err
	})
}

// Subscribe implements pubsub.Subscriber. The Subscription consumes the
// group's queue on a channel of its own, with a prefetch of the larger of
// Config.Prefetch and its concurrency; after a lost connection it consumes
// again on the next one (deliveries not yet acknowledged then are
// redelivered). Retries wait in the group's retry queues on the broker, so
// their delay and attempt count survive a crash of the consumer. Messages
// of one Key are not kept in order.
func (b *Broker) Subscribe(ctx context.Context, topic, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) (*pubsub.Subscription, error) {
	cfg, err := pubsub.NewSubscribeConfig(topic, group, opts...)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(validateTopic(topic), validateTopic(cfg.DeadLetterTopic)); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", pubsub.ErrInvalidOption)
	}
	return b.subs.Start(func(onStop func()) (*pubsub.Subscription, error) {
		if err := b.createGroup(ctx, topic, group); err != nil {
			return nil, err
		}
		r, err := b.startReceiver(ctx, cfg)
		if err != nil {
			return nil, err
		}
		sub, err := pubsub.StartSubscription(ctx, cfg, r, b, h, onStop)
		if err != nil {
			_ = r.Close()
			return nil, err
		}
		return sub, nil
	})
}

// Ping implements pubsub.Pinger: it returns nil when both connections are
// up and a publishing channel is open, and an error saying which connection
// is being re-established otherwise. It does not wait for a reconnection.
func (b *Broker) Ping(ctx context.Context) error {
	if b.subs.Closed() {
		return pubsub.ErrClosed
	}
	for _, l := range []*link{b.pubLink, b.subLink} {
		if !l.up() {
			return fmt.Errorf("rabbitmq: %s connection to %s is down; reconnecting", l.name, l.addr)
		}
	}
	_, err := b.pub.channel(ctx)
	if err != nil && b.subs.Closed() {
		return pubsub.ErrClosed
	}
	return err
}

// Close closes every Subscription made by the Broker, waiting for each to
// drain, then closes its connections; later calls return pubsub.ErrClosed.
// Publish calls still waiting fail. Close is idempotent.
func (b *Broker) Close() error {
	err := b.subs.Close()
	b.closeOnce.Do(func() {
		_ = b.pubLink.close()
		_ = b.subLink.close()
		b.pub.close()
	})
	return err
}
