package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// Client is the portable broker: transports give it a driver (their broker
// I/O) and it adds everything else once, the same for every broker:
// validation, IDs, the delivery loop with its retries and dead letters,
// middleware and observers, and the shutdown phases. Every broker that
// transport.Open and the transports' constructors return is a *Client; it
// implements Broker, GroupCreator, GroupDeleter, DeadLetterAdmin, Pinger and
// GroupLister.
//
// A Client is safe for concurrent use. Stop it with Shutdown or Close.
type Client struct {
	d       driver.Broker
	cfg     brokerConfig
	publish PublishFunc // the publish middleware around sendBatch

	ops      gate        // Publish, Subscribe and admin calls in progress
	draining atomic.Bool // Shutdown started: Subscribe refuses

	mu   sync.Mutex
	subs map[*Subscription]struct{}

	shutdownOnce sync.Once
	shutdownDone chan struct{}
	shutdownErr  error
}

// NewClient resolves opts (see BrokerOption), calls open with the result to
// connect the transport's driver, and returns the Client around it. It is
// for transports: applications get Clients from transport.Open or a
// transport's constructor. Bad options return ErrInvalidOption without
// calling open; open's error is returned as it is.
func NewClient(ctx context.Context, open func(context.Context, driver.Env) (driver.Broker, error), opts ...BrokerOption) (*Client, error) {
	cfg, err := newBrokerConfig(opts)
	if err != nil {
		return nil, err
	}
	d, err := open(ctx, driver.Env{Logger: cfg.sub.logger})
	if err != nil {
		return nil, err
	}
	c := &Client{d: d, cfg: cfg, subs: map[*Subscription]struct{}{}, shutdownDone: make(chan struct{})}
	c.publish = c.sendBatch
	for i := len(cfg.publishMiddleware) - 1; i >= 0; i-- {
		c.publish = cfg.publishMiddleware[i](c.publish)
	}
	return c, nil
}

var (
	_ Broker          = (*Client)(nil)
	_ GroupCreator    = (*Client)(nil)
	_ GroupDeleter    = (*Client)(nil)
	_ DeadLetterAdmin = (*Client)(nil)
	_ Pinger          = (*Client)(nil)
	_ GroupLister     = (*Client)(nil)
)

// Publish implements Publisher: it runs the publish middleware (see
// WithPublishMiddleware), then validates topic and messages (the
// transport's limits included), sets missing IDs and hands the batch to the
// transport, which returns once the broker durably accepted every message.
// It blocks at most until ctx ends (and each transport's own timeouts, see
// its package). It works until Shutdown has drained the subscriptions.
func (c *Client) Publish(ctx context.Context, topic string, msgs ...*Message) error {
	return c.publish(ctx, topic, msgs)
}

// sendBatch is the innermost PublishFunc.
func (c *Client) sendBatch(ctx context.Context, topic string, msgs []*Message) error {
	if !c.ops.enter() {
		return ErrClosed
	}
	defer c.ops.leave()
	if err := c.validateTopic(topic); err != nil {
		return err
	}
	if err := c.checkBatch(topic, msgs); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs {
		if m.ID == "" {
			m.ID = NewID()
		}
	}
	return c.sendErr(ctx, topic, msgs, c.d.SendBatch(ctx, topic, driverMessages(msgs)))
}

// checkBatch validates every message of a Publish before any I/O.
func (c *Client) checkBatch(topic string, msgs []*Message) error {
	for i, m := range msgs {
		if m == nil {
			return fmt.Errorf("pubsub: message %d of %d to %s is nil: %w", i+1, len(msgs), topic, ErrInvalidMessage)
		}
		if err := c.d.CheckMessage((*driver.Message)(m)); err != nil {
			return fmt.Errorf("pubsub: message %d of %d to %s: %w", i+1, len(msgs), topic, err)
		}
	}
	return nil
}

// sendErr turns a driver's BatchError into a PublishError; context errors
// pass unwrapped.
func (c *Client) sendErr(ctx context.Context, topic string, msgs []*Message, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	var be *driver.BatchError
	if errors.As(err, &be) && len(be.Failed) > 0 {
		pe := &PublishError{Topic: topic, Failed: be.Failed, Err: be.Err}
		for _, i := range be.Failed {
			if i >= 0 && i < len(msgs) {
				pe.IDs = append(pe.IDs, msgs[i].ID)
			}
		}
		return pe
	}
	return err
}

// validateTopic applies pubsub's name rules and the transport's.
func (c *Client) validateTopic(topic string) error {
	if err := ValidateTopic(topic); err != nil {
		return err
	}
	return c.d.ValidateNames(topic, "")
}

// validateGroup applies pubsub's name rules and the transport's to a topic
// and group.
func (c *Client) validateGroup(topic, group string) error {
	if err := errors.Join(ValidateTopic(topic), ValidateGroup(group)); err != nil {
		return err
	}
	return c.d.ValidateNames(topic, group)
}

// Subscribe implements Subscriber. It validates names and options (the
// broker's defaults with opts applied), creates the group if it does not
// exist, and starts Concurrency workers that receive, run h (inside the
// middleware) and settle each message. It returns ErrClosed once Shutdown
// has started.
func (c *Client) Subscribe(ctx context.Context, topic, group string, h Handler, opts ...SubscribeOption) (*Subscription, error) {
	cfg, err := c.cfg.sub.forSubscription(topic, group, opts)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	err = c.d.ValidateNames(topic, group)
	if err == nil && cfg.deadLetterTopic != "" {
		err = c.d.ValidateNames(cfg.deadLetterTopic, "")
	}
	if err != nil {
		return nil, err
	}
	if c.draining.Load() || !c.ops.enter() {
		return nil, ErrClosed
	}
	defer c.ops.leave()
	ds, err := c.d.Subscribe(ctx, topic, group, driver.SubscribeConfig{
		Concurrency: cfg.concurrency, MaxAttempts: cfg.maxAttempts,
		BackoffInitial: cfg.backoffInitial, BackoffMax: cfg.backoffMax, Logger: cfg.logger,
	})
	if err != nil {
		return nil, err
	}
	s := startSubscription(ctx, cfg, ds, c, h)
	c.mu.Lock()
	if c.draining.Load() {
		c.mu.Unlock()
		_ = s.Close()
		return nil, ErrClosed
	}
	select {
	case <-s.stopped: // its context ended already
	default:
		c.subs[s] = struct{}{}
	}
	c.mu.Unlock()
	return s, nil
}

// forget stops tracking s, which has stopped.
func (c *Client) forget(s *Subscription) {
	c.mu.Lock()
	delete(c.subs, s)
	c.mu.Unlock()
}

// CreateGroup implements GroupCreator.
func (c *Client) CreateGroup(ctx context.Context, topic, group string) error {
	return c.admin(topic, group, func() error { return c.d.CreateGroup(ctx, topic, group) })
}

// DeleteGroup implements GroupDeleter.
func (c *Client) DeleteGroup(ctx context.Context, topic, group string) error {
	return c.admin(topic, group, func() error { return c.d.DeleteGroup(ctx, topic, group) })
}

// ListDeadLetters implements DeadLetterAdmin.
func (c *Client) ListDeadLetters(ctx context.Context, topic, group string, limit int) ([]*Message, error) {
	var dls []*driver.Message
	err := c.admin(topic, group, func() (err error) {
		dls, err = c.d.ListDeadLetters(ctx, topic, group, max(limit, 0))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*Message, len(dls))
	for i, m := range dls {
		out[i] = (*Message)(m)
		if out[i].Metadata == nil {
			out[i].Metadata = map[string]string{}
		}
	}
	return out, nil
}

// ReplayDeadLetters implements DeadLetterAdmin.
func (c *Client) ReplayDeadLetters(ctx context.Context, topic, group string, ids ...string) (int, error) {
	var n int
	err := c.admin(topic, group, func() (err error) {
		n, err = c.d.ReplayDeadLetters(ctx, topic, group, ids)
		return err
	})
	return n, err
}

// PurgeDeadLetters implements DeadLetterAdmin.
func (c *Client) PurgeDeadLetters(ctx context.Context, topic, group string, ids ...string) (int, error) {
	var n int
	err := c.admin(topic, group, func() (err error) {
		n, err = c.d.PurgeDeadLetters(ctx, topic, group, ids)
		return err
	})
	return n, err
}

// ListGroups implements GroupLister: the transport's answer, or an error
// wrapping errors.ErrUnsupported when its driver cannot list groups.
func (c *Client) ListGroups(ctx context.Context, topic string) ([]GroupInfo, error) {
	if err := c.validateTopic(topic); err != nil {
		return nil, err
	}
	gl, ok := c.d.(driver.GroupLister)
	if !ok {
		return nil, fmt.Errorf("pubsub: this transport cannot list the groups of a topic: %w", errors.ErrUnsupported)
	}
	if !c.ops.enter() {
		return nil, ErrClosed
	}
	defer c.ops.leave()
	gs, err := gl.ListGroups(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make([]GroupInfo, len(gs))
	for i, g := range gs {
		out[i] = GroupInfo(g)
	}
	return out, nil
}

// admin validates topic and group, then runs fn unless the Client is
// closed.
func (c *Client) admin(topic, group string, fn func() error) error {
	if err := c.validateGroup(topic, group); err != nil {
		return err
	}
	if !c.ops.enter() {
		return ErrClosed
	}
	defer c.ops.leave()
	return fn()
}

// Ping implements Pinger: the transport's readiness, or ErrClosed.
func (c *Client) Ping(ctx context.Context) error {
	if !c.ops.enter() {
		return ErrClosed
	}
	defer c.ops.leave()
	return c.d.Ping(ctx)
}

// As gives access to the transport's underlying client, for what Switchyard
// does not offer: when i is a pointer to a type the transport documents
// (for example **amqp091.Connection on RabbitMQ), As sets it and returns
// true. Nothing obtained this way is managed by the Client.
func (c *Client) As(i any) bool { return c.d.As(i) }
