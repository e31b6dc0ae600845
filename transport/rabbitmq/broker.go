package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// New connects to the broker at cfg.URL (see Config for the defaults) and
// returns a *pubsub.Client on it; opts configure the portable layer
// (logger, subscription defaults, middleware, observers). It blocks while
// connecting, for at most cfg.ConnectTimeout (default 10s) or until ctx
// ends; an unreachable broker is an error naming its host and port, never
// its password. The client holds three AMQP connections (publishing,
// consuming, administration), each re-established when lost. The caller
// must Close (or Shutdown) the client.
//
// The client's As method accepts **amqp091.Connection: it sets the current
// publishing connection (nil while it is being re-established), which the
// client keeps managing; do not close it.
func New(ctx context.Context, cfg Config, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return pubsub.NewClient(ctx, func(ctx context.Context, env driver.Env) (driver.Broker, error) {
		return open(ctx, cfg, env.Logger)
	}, opts...)
}

// OpenURL connects to the broker that u names, as New does:
//
//	amqp://USER:PASSWORD@HOST:PORT/VHOST?queue_type=quorum&dead_letter_limit=100000
//	amqps://USER:PASSWORD@HOST:PORT/VHOST?cacertfile=/path/ca.pem
//	amqp://USER:PASSWORD@HOST1:PORT1,HOST2:PORT2,HOST3:PORT3/VHOST   (cluster nodes, tried in turn)
//
// The query parameters prefetch, queue_type (quorum or classic),
// confirm_timeout and connect_timeout (Go durations such as 30s),
// max_message_bytes and dead_letter_limit set the Config fields of those
// names; amqp091's heartbeat, channel_max, auth_mechanism, cacertfile,
// certfile, keyfile and server_name_indication are passed on. Any other
// parameter is an error. transport.Open calls it for amqp:// and amqps://
// URLs.
func OpenURL(ctx context.Context, u *url.URL, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, opts...)
}

// broker is the RabbitMQ driver. It holds three supervised connections: one
// for publishing and one for consuming (as RabbitMQ recommends, so that
// flow control on publishers never stalls consumers' acknowledgements), and
// one for administration (declarations, probes, dead-letter admin), whose
// loss disturbs neither.
type broker struct {
	cfg       Config
	log       *slog.Logger
	pubLink   *link
	subLink   *link
	adminLink *link
	pub       *publisher
	retries   retryDeclarations
	closed    atomic.Bool
	closeOnce sync.Once
}

// open dials the three connections at once, so that it takes one
// ConnectTimeout at most.
func open(ctx context.Context, cfg Config, log *slog.Logger) (*broker, error) {
	b := &broker{cfg: cfg, log: log, retries: retryDeclarations{at: map[time.Duration]time.Time{}}}
	var (
		wg   sync.WaitGroup
		errs [3]error
	)
	wg.Go(func() { b.pubLink, errs[0] = newLink(ctx, &b.cfg, log, "publish") })
	wg.Go(func() { b.subLink, errs[1] = newLink(ctx, &b.cfg, log, "consume") })
	wg.Go(func() { b.adminLink, errs[2] = newLink(ctx, &b.cfg, log, "admin") })
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, l := range []*link{b.pubLink, b.subLink, b.adminLink} {
			if l != nil {
				_ = l.close()
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err // the others fail for the same cause, if they do
	}
	b.pub = newPublisher(b.pubLink, func(ctx context.Context, exchange string) error {
		return b.adminDo(ctx, func(a *adminConn) error {
			ch, err := a.channel()
			if err != nil {
				return err
			}
			return declareExchange(ch, exchange)
		})
	})
	return b, nil
}

// ValidateNames implements driver.Broker: RabbitMQ reserves the exchange
// names beginning with "amq.", so topics may not begin so. Group names
// have no further rule: queue names begin with the topic.
func (b *broker) ValidateNames(topic, _ string) error {
	if strings.HasPrefix(topic, "amq.") {
		return fmt.Errorf("rabbitmq: topic %q: names beginning with \"amq.\" are reserved by RabbitMQ: %w", topic, driver.ErrInvalidTopic)
	}
	return nil
}

// CheckMessage implements driver.Broker: a message over MaxMessageBytes
// (driver.Size) is too large; IDs, metadata keys and content types must fit
// AMQP's short strings, and metadata keys may not take the headers of the
// transport or the broker.
func (b *broker) CheckMessage(m *driver.Message) error {
	if n := driver.Size(m); n > b.cfg.MaxMessageBytes {
		return fmt.Errorf("rabbitmq: message is %d bytes, over the limit of %d (max_message_bytes): %w", n, b.cfg.MaxMessageBytes, driver.ErrMessageTooLarge)
	}
	if err := checkMessage(m); err != nil {
		return fmt.Errorf("rabbitmq: %s: %w", err, driver.ErrInvalidMessage)
	}
	return nil
}

// SendBatch implements driver.Broker. It declares the topic's exchange on
// first use (once per connection), publishes every message (persistent)
// and returns once RabbitMQ confirmed each one; concurrent calls and the
// messages of a batch share their round-trips. While the connection is
// down, it waits for it to come back, and publishes again, in their order,
// the messages whose confirmation was lost with it; all this is bounded by
// ctx and Config.ConfirmTimeout (default 30s), after which it returns an
// error and some messages may have been accepted. Messages the broker
// refuses (basic.nack, for example from a group queue held to a length
// limit by a policy) are listed in a *driver.BatchError. A topic without
// groups drops what is published to it (the broker confirms it all the
// same); create groups ahead with CreateGroup.
func (b *broker) SendBatch(ctx context.Context, topic string, msgs []*driver.Message) error {
	out := make([]amqp.Publishing, len(msgs))
	for i, m := range msgs {
		out[i] = toPublishing(m)
	}
	return b.withTimeout(ctx, "publish to "+topic, func(ctx context.Context) error {
		return b.pub.send(ctx, target{exchange: exchangeName(topic), declare: true}, out)
	})
}

// errTimeout is wrapped by the errors of calls that ran out of
// Config.ConfirmTimeout; it is context.DeadlineExceeded.
var errTimeout = context.DeadlineExceeded

// withTimeout runs fn with ctx bounded by ConfirmTimeout. If ctx itself ends,
// its error is returned unwrapped; if the timeout does, an error saying so.
func (b *broker) withTimeout(ctx context.Context, what string, fn func(context.Context) error) error {
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
	case errors.Is(err, driver.ErrClosed) && b.closed.Load():
		return driver.ErrClosed
	}
	return err
}

// Ping implements driver.Broker: it returns nil when the three connections
// are up and a publishing channel is open, and an error saying which
// connection is being re-established otherwise. It does not wait for a
// reconnection.
func (b *broker) Ping(ctx context.Context) error {
	for _, l := range []*link{b.pubLink, b.subLink, b.adminLink} {
		if !l.up() {
			return fmt.Errorf("rabbitmq: %s connection to %s is down; reconnecting", l.name, l.addrs)
		}
	}
	_, err := b.pub.channel(ctx)
	if err != nil && b.closed.Load() {
		return driver.ErrClosed
	}
	return err
}

// Close implements driver.Broker: it closes the connections. Calls still
// waiting fail with driver.ErrClosed. It is idempotent.
func (b *broker) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		b.pub.close()
		for _, l := range []*link{b.pubLink, b.subLink, b.adminLink} {
			_ = l.close()
		}
	})
	return nil
}

// As implements driver.Broker: for i of type **amqp091.Connection it sets
// the current publishing connection (nil while it is down).
func (b *broker) As(i any) bool {
	switch p := i.(type) {
	case **amqp.Connection:
		*p = b.pub.connection()
		return true
	}
	return false
}
