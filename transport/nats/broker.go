package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// New connects to the servers of cfg.URL (see Config for the defaults),
// checks that JetStream is enabled, and returns the broker. opts configure
// the portable layer (logger, subscription defaults, middleware,
// observers). It blocks while connecting, bounded by ctx and
// Config.ConnectTimeout; the error names the servers, never the password
// or token. The caller must Close (or Shutdown) the broker.
func New(ctx context.Context, cfg Config, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return pubsub.NewClient(ctx, func(ctx context.Context, env driver.Env) (driver.Broker, error) {
		return open(ctx, cfg, env.Logger)
	}, opts...)
}

// OpenURL is New with the Config that u describes: the servers and
// credentials of a nats:// or tls:// URL, and the query parameters listed
// in the package documentation ("URL"). Unknown parameters are an error.
func OpenURL(ctx context.Context, u *url.URL, opts ...pubsub.BrokerOption) (*pubsub.Client, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, opts...)
}

// broker is the NATS JetStream driver: one connection, shared by
// publishing, subscriptions and administration.
type broker struct {
	cfg   Config
	log   *slog.Logger
	nc    *natsgo.Conn
	js    jetstream.JetStream
	link  *link
	names names
	// maxBytes is the size limit that CheckMessage applies.
	maxBytes int
	// acks routes asynchronous publish outcomes to SendBatch calls.
	acks acks

	streams sync.Map // topic → jetstream.RetentionPolicy of its stream, known to exist
	// retention is the retention of the topic streams the broker creates:
	// interest, or limits (with the janitor) on NATS Server 2.9.
	retention   jetstream.RetentionPolicy
	janitorDone chan struct{}
	// holdRetries says that the server may drop redeliveries (see
	// redeliverySafe): members wait short retry delays themselves.
	holdRetries bool
	dlReady     atomic.Bool // the dead-letter stream is known to exist

	closeOnce sync.Once
}

// open connects and checks the server.
func open(ctx context.Context, cfg Config, log *slog.Logger) (*broker, error) {
	l := newLink()
	nc, err := connect(ctx, cfg, log, l)
	if err != nil {
		return nil, err
	}
	b := &broker{cfg: cfg, log: log, nc: nc, link: l, names: names{ns: cfg.Namespace}}
	fail := func(err error) (*broker, error) {
		nc.Close()
		return nil, err
	}
	b.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.PublishWindow),
		jetstream.WithPublishAsyncTimeout(attemptTimeout),
		jetstream.WithPublishAsyncAckHandler(b.acks.onAck),
		jetstream.WithPublishAsyncErrHandler(b.acks.onErr))
	if err != nil {
		return fail(fmt.Errorf("nats: %w", err))
	}
	actx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if _, err := b.js.AccountInfo(actx); err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(fmt.Errorf("nats: JetStream at %s: %w (start nats-server with -js, and enable JetStream for the account)", nc.ConnectedAddr(), err))
	}
	room := int(nc.MaxPayload()) - HeaderRoom
	switch {
	case cfg.MaxMessageBytes == 0:
		b.maxBytes = room
	case cfg.MaxMessageBytes > room:
		return fail(fmt.Errorf("nats: MaxMessageBytes %d is more than the server's max_payload %d minus HeaderRoom (%d)", cfg.MaxMessageBytes, nc.MaxPayload(), HeaderRoom))
	default:
		b.maxBytes = cfg.MaxMessageBytes
	}
	if b.maxBytes <= 0 {
		return fail(fmt.Errorf("nats: the server's max_payload %d leaves no room for messages (HeaderRoom %d)", nc.MaxPayload(), HeaderRoom))
	}
	b.retention = jetstream.InterestPolicy
	if !interestRetentionSafe(nc.ConnectedServerVersion()) {
		b.retention = jetstream.LimitsPolicy
		log.Warn("nats: NATS Server before 2.10 loses unacknowledged messages of interest-retention streams when it restarts; new topic streams use limits retention, and this broker purges what every group settled every few seconds; upgrade the server",
			"server_version", nc.ConnectedServerVersion())
	}
	if !redeliverySafe(nc.ConnectedServerVersion()) {
		b.holdRetries = true
		log.Warn("nats: NATS Server before 2.10.16 may deliver a message handed back with a delay only after AckWait; members wait retry delays shorter than AckWait themselves; upgrade the server",
			"server_version", nc.ConnectedServerVersion())
	}
	b.janitorDone = make(chan struct{})
	go b.janitor(b.janitorDone)
	return b, nil
}

// ValidateNames implements driver.Broker: a topic must not make an empty
// subject token; every valid group name can be encoded.
func (b *broker) ValidateNames(topic, _ string) error { return validateTopic(topic) }

// CheckMessage implements driver.Broker: metadata keys must be possible
// header names and not reserved, and the message with its headers must fit
// MaxMessageBytes.
func (b *broker) CheckMessage(m *driver.Message) error { return checkMessage(m, b.maxBytes) }

// CreateGroup implements driver.Broker: it creates the topic's stream and
// the group's two consumers where they do not exist. Transient errors are
// retried within RequestTimeout.
func (b *broker) CreateGroup(ctx context.Context, topic, group string) error {
	_, err := b.ensureGroup(ctx, topic, group)
	return err
}

// DeleteGroup implements driver.Broker: it deletes the group's consumers,
// then purges its own subject and its dead letters.
func (b *broker) DeleteGroup(ctx context.Context, topic, group string) error {
	stream := b.names.stream(topic)
	err := b.retry(ctx, "delete group "+group+" of "+topic, func(ctx context.Context) error {
		err := b.js.DeleteConsumer(ctx, stream, consumerName(group))
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("nats: group %s of topic %s: %w", group, topic, driver.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return err
	}
	return b.retry(ctx, "delete the own consumer and dead letters of group "+group+" of "+topic, func(ctx context.Context) error {
		err := b.js.DeleteConsumer(ctx, stream, ownConsumerName(group))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		if _, err := b.purge(ctx, stream, b.names.groupSubject(topic, group)); err != nil {
			return err
		}
		_, err = b.purge(ctx, b.names.deadLetterStream(), b.names.deadLetterSubject(topic, group))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		return err
	})
}

// Ping implements driver.Broker: the connection is up and JetStream
// answers.
func (b *broker) Ping(ctx context.Context) error {
	if b.nc.IsClosed() {
		return errClosed
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("nats: not connected (status %v); reconnecting", b.nc.Status())
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("nats: JetStream does not answer: %w", err)
	}
	return nil
}

// Close implements driver.Broker: it sends what the connection buffered
// (acknowledgements included) and closes it. Publishes still waiting for
// acknowledgements fail.
func (b *broker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		if b.nc.IsConnected() {
			if ferr := b.nc.FlushTimeout(attemptTimeout); ferr != nil {
				err = fmt.Errorf("nats: flush before close: %w", ferr)
			}
		}
		close(b.janitorDone)
		b.nc.Close()
		b.link.close()
	})
	return err
}

// As implements driver.Broker: **nats.Conn gets the connection and
// *jetstream.JetStream its JetStream context.
func (b *broker) As(i any) bool {
	switch p := i.(type) {
	case **natsgo.Conn:
		*p = b.nc
	case *jetstream.JetStream:
		*p = b.js
	default:
		return false
	}
	return true
}
