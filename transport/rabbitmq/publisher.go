package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// publisher publishes with confirms on the publish link: one channel in
// confirm mode shared by every Publish call. Each call writes all its
// messages, then waits for their deferred confirmations, so concurrent calls
// and the messages of a batch share the round-trips; no lock is held while
// waiting. Declarations run on a separate admin channel, so that a refused
// declaration never closes the channel that carries others' publishes.
type publisher struct {
	link *link

	writeMu sync.Mutex // held while one send writes its messages

	mu      sync.Mutex
	cur     *confirmChannel
	opening chan struct{} // not nil while a goroutine opens a channel

	admin admin
}

// confirmChannel is one channel in confirm mode, with the exchanges declared
// since it was opened.
type confirmChannel struct {
	ch     *amqp.Channel
	closed chan struct{} // closed when ch is closed; err is set then
	err    *amqp.Error   // why ch closed: nil when closed by us

	mu        sync.Mutex
	exchanges map[string]*declaration
}

// declaration is a declaration made once and awaited by concurrent callers.
type declaration struct {
	done chan struct{}
	err  error
}

func newPublisher(l *link) *publisher {
	return &publisher{link: l, admin: admin{link: l, sem: make(chan struct{}, 1)}}
}

// channel returns the current confirm channel, opening one (and waiting for
// the link) when there is none.
func (p *publisher) channel(ctx context.Context) (*confirmChannel, error) {
	for {
		p.mu.Lock()
		if cc := p.cur; cc != nil && !cc.ch.IsClosed() {
			p.mu.Unlock()
			return cc, nil
		}
		if w := p.opening; w != nil {
			p.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		w := make(chan struct{})
		p.opening = w
		p.mu.Unlock()

		cc, conn, err := p.open(ctx)
		p.mu.Lock()
		if err == nil {
			p.cur = cc
		}
		p.opening = nil
		close(w)
		p.mu.Unlock()
		if err == nil {
			return cc, nil
		}
		if !connLost(conn, err) {
			return nil, err
		}
		// The connection died under us: wait for the next one.
		if err := p.link.waitChange(ctx, conn); err != nil {
			return nil, err
		}
	}
}

// open opens a confirm channel on the link's current connection. conn is the
// connection it tried, if any.
func (p *publisher) open(ctx context.Context) (cc *confirmChannel, conn *amqp.Connection, err error) {
	conn, err = p.link.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, conn, fmt.Errorf("rabbitmq: open publishing channel: %w", err)
	}
	cc = &confirmChannel{ch: ch, closed: make(chan struct{}), exchanges: map[string]*declaration{}}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		cc.err = <-closes
		close(cc.closed)
	}()
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, conn, fmt.Errorf("rabbitmq: enable publisher confirms: %w", err)
	}
	return cc, conn, nil
}

// target is where send publishes: an exchange and routing key. When declare
// is set, the exchange is declared (once per confirm channel) before use.
type target struct {
	exchange, key string
	declare       bool
}

// errNacked is returned when the broker refused to take a message.
var errNacked = errors.New("rabbitmq: broker refused the message (basic.nack)")

// send publishes msgs to t and returns once the broker confirmed every one.
// Messages whose confirmation is lost with the connection are published again
// on the next connection (so a message may arrive twice, never zero times
// after a nil return). It returns ctx's error if ctx ends first, an error
// wrapping errNacked if the broker refuses a message, and the broker's error
// if it closes the channel over a message (for example one over its
// max_message_size).
func (p *publisher) send(ctx context.Context, t target, msgs []amqp.Publishing) error {
	pending := make([]int, len(msgs))
	for i := range pending {
		if err := msgs[i].Headers.Validate(); err != nil {
			return fmt.Errorf("rabbitmq: publish to %q: %w", t.exchange, err)
		}
		pending[i] = i
	}
	dcs := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for {
		cc, err := p.channel(ctx)
		if err != nil {
			return err
		}
		if t.declare {
			if err := p.declareExchange(ctx, cc, t.exchange); err != nil {
				return err
			}
		}
		if err := p.link.waitUnblocked(ctx); err != nil {
			return err
		}
		var lost []int // to publish again on a new channel
		dcs = dcs[:0]
		// One call writes its messages at a time: the writes of a batch do
		// not contend with other calls' message by message. The lock is
		// released before waiting for the confirmations.
		p.writeMu.Lock()
		for n, i := range pending {
			dc, err := cc.ch.PublishWithDeferredConfirm(t.exchange, t.key, false, false, msgs[i])
			if err != nil {
				// The headers are valid: this is an I/O error, and the
				// connection is going down.
				lost = append(lost, pending[n:]...)
				break
			}
			dcs = append(dcs, dc)
		}
		p.writeMu.Unlock()
		for n, dc := range dcs {
			select {
			case <-dc.Done():
			case <-ctx.Done():
				return ctx.Err()
			}
			if dc.Acked() {
				continue
			}
			if !cc.ch.IsClosed() {
				return fmt.Errorf("rabbitmq: publish to %q: %w", t.exchange, errNacked)
			}
			// Nacked by the channel's closing: find out why.
			select {
			case <-cc.closed:
			case <-ctx.Done():
				return ctx.Err()
			}
			if cc.err != nil && cc.err.Recover {
				return fmt.Errorf("rabbitmq: publish to %q: broker closed the channel: %w", t.exchange, cc.err)
			}
			lost = append(lost, pending[n])
		}
		if len(lost) == 0 {
			return nil
		}
		pending = lost
		// Wait for the channel to be closed (a send may fail before the
		// connection noticed it is lost), then find out why.
		select {
		case <-cc.closed:
		case <-ctx.Done():
			return ctx.Err()
		}
		if cc.err != nil && cc.err.Recover {
			return fmt.Errorf("rabbitmq: publish to %q: broker closed the channel: %w", t.exchange, cc.err)
		}
	}
}

// declareExchange declares topic's fanout exchange once per confirm channel;
// concurrent callers share one declaration.
func (p *publisher) declareExchange(ctx context.Context, cc *confirmChannel, exchange string) error {
	for {
		cc.mu.Lock()
		d := cc.exchanges[exchange]
		leader := d == nil
		if leader {
			d = &declaration{done: make(chan struct{})}
			cc.exchanges[exchange] = d
		}
		cc.mu.Unlock()
		if leader {
			d.err = p.admin.do(ctx, func(ch *amqp.Channel) error {
				return ch.ExchangeDeclare(exchange, amqp.ExchangeFanout, true, false, false, false, nil)
			})
			if d.err != nil {
				cc.mu.Lock()
				delete(cc.exchanges, exchange)
				cc.mu.Unlock()
				d.err = fmt.Errorf("rabbitmq: declare exchange %q: %w", exchange, d.err)
			}
			close(d.done)
			return d.err
		}
		select {
		case <-d.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if d.err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The leader failed, maybe on its own context: try ourselves.
	}
}

// close closes the confirm channel; in-flight sends fail over to the next
// connection, or return pubsub.ErrClosed once the link is closed.
func (p *publisher) close() {
	p.mu.Lock()
	cc := p.cur
	p.cur = nil
	p.mu.Unlock()
	if cc != nil {
		_ = cc.ch.Close()
	}
	p.admin.close()
}

// admin runs declarations on a channel of its own, one at a time (AMQP
// channels carry one RPC at a time). A declaration the broker refuses closes
// only this channel, which is reopened for the next one.
type admin struct {
	link *link
	sem  chan struct{} // holds a token while an operation runs
	ch   *amqp.Channel // guarded by sem
}

// do runs fn on the admin channel, reopening it (on a new connection if need
// be) and retrying fn while the connection is lost. fn must be idempotent.
// It returns when fn succeeded, the broker refused it, or ctx ended; in the
// last case fn may still complete in the background.
func (a *admin) do(ctx context.Context, fn func(*amqp.Channel) error) error {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	res := make(chan error, 1)
	go func() {
		defer func() { <-a.sem }()
		res <- a.run(ctx, fn)
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *admin) run(ctx context.Context, fn func(*amqp.Channel) error) error {
	for {
		if a.ch == nil || a.ch.IsClosed() {
			conn, err := a.link.get(ctx)
			if err != nil {
				return err
			}
			ch, err := conn.Channel()
			if err != nil {
				if connLost(conn, err) {
					if err := a.link.waitChange(ctx, conn); err != nil {
						return err
					}
					continue
				}
				return fmt.Errorf("rabbitmq: open channel: %w", err)
			}
			a.ch = ch
		}
		err := fn(a.ch)
		if err == nil || isSoftErr(err) || (!a.ch.IsClosed() && !connLost(nil, err)) {
			return err
		}
		// The connection was lost during fn: retry on the next one.
		select {
		case <-time.After(reconnectMin):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *admin) close() {
	a.sem <- struct{}{}
	if a.ch != nil {
		_ = a.ch.Close()
	}
	<-a.sem
}
