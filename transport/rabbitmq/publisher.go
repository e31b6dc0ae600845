package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// publisher publishes with confirms on the publish link: one channel in
// confirm mode shared by every publish, the application's and the
// transport's own (retry copies, hand-backs, dead letters, replays). Each
// send writes all its messages, then waits for their deferred
// confirmations, so concurrent sends and the messages of a batch share the
// round-trips; no lock is held while waiting. Exchanges are declared on the
// admin link, so that a refused declaration never closes the channel that
// carries others' publishes.
type publisher struct {
	link    *link
	declare func(ctx context.Context, exchange string) error // declares a topic's exchange

	mu      sync.Mutex
	cur     *confirmChannel
	opening chan struct{} // not nil while a goroutine opens a channel
}

// confirmChannel is one channel in confirm mode, with the exchanges declared
// since it was opened and the mandatory publishes awaiting their outcome.
type confirmChannel struct {
	ch      *amqp.Channel
	closed  chan struct{} // closed when ch is closed; err is set then
	err     *amqp.Error   // why ch closed: nil when closed by us
	writeMu sync.Mutex    // held while one send writes its messages

	// Returns (basic.return) of mandatory publishes are read by one
	// goroutine. RabbitMQ sends a message's return before its confirm, and
	// amqp091 hands the return to that goroutine before it resolves the
	// confirm; a sender that sees its confirm then passes a barrier through
	// the goroutine, after which any return of its message is recorded.
	barrier     chan chan struct{}
	returnsDone chan struct{} // closed when the goroutine exited (ch closed)

	mu        sync.Mutex
	exchanges map[string]*declaration
	expected  map[returnKey][]*mandatory // by key, in publish order
}

// returnKey identifies the publishes a basic.return may belong to.
type returnKey struct{ exchange, key, id string }

// mandatory is one mandatory publish awaiting its outcome.
type mandatory struct {
	key      returnKey
	returned *amqp.Return // set by the returns goroutine
}

// declaration is a declaration made once and awaited by concurrent callers.
type declaration struct {
	done chan struct{}
	err  error
}

func newPublisher(l *link, declare func(context.Context, string) error) *publisher {
	return &publisher{link: l, declare: declare}
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
	cc, err = newConfirmChannel(ch)
	if err != nil {
		_ = ch.Close()
		return nil, conn, err
	}
	return cc, conn, nil
}

// newConfirmChannel puts ch in confirm mode and watches its closing and
// its returns.
func newConfirmChannel(ch *amqp.Channel) (*confirmChannel, error) {
	cc := &confirmChannel{
		ch: ch, closed: make(chan struct{}),
		barrier: make(chan chan struct{}), returnsDone: make(chan struct{}),
		exchanges: map[string]*declaration{}, expected: map[returnKey][]*mandatory{},
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		cc.err = <-closes
		close(cc.closed)
	}()
	go cc.readReturns(ch.NotifyReturn(make(chan amqp.Return)))
	if err := ch.Confirm(false); err != nil {
		return nil, fmt.Errorf("rabbitmq: enable publisher confirms: %w", err)
	}
	return cc, nil
}

// readReturns records each basic.return with the mandatory publish it
// belongs to, and passes barriers, until the channel closes.
func (cc *confirmChannel) readReturns(returns <-chan amqp.Return) {
	defer close(cc.returnsDone)
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				return
			}
			cc.mu.Lock()
			for _, m := range cc.expected[returnKey{r.Exchange, r.RoutingKey, r.MessageId}] {
				if m.returned == nil {
					m.returned = &r
					break
				}
			}
			cc.mu.Unlock()
		case w := <-cc.barrier:
			close(w)
		}
	}
}

// expect registers a mandatory publish about to be written.
func (cc *confirmChannel) expect(exchange, key, id string) *mandatory {
	m := &mandatory{key: returnKey{exchange, key, id}}
	cc.mu.Lock()
	cc.expected[m.key] = append(cc.expected[m.key], m)
	cc.mu.Unlock()
	return m
}

// forget unregisters m.
func (cc *confirmChannel) forget(m *mandatory) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	list := cc.expected[m.key]
	if i := slices.Index(list, m); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(cc.expected, m.key)
	} else {
		cc.expected[m.key] = list
	}
}

// returnOf returns the basic.return of m, whose publish was confirmed, or
// nil if it was routed; it unregisters m.
func (cc *confirmChannel) returnOf(m *mandatory) *amqp.Return {
	w := make(chan struct{})
	select {
	case cc.barrier <- w:
		<-w
	case <-cc.returnsDone:
	}
	cc.mu.Lock()
	r := m.returned
	cc.mu.Unlock()
	cc.forget(m)
	return r
}

// target is where send publishes: an exchange and routing key.
type target struct {
	exchange, key string
	// declare: the exchange is a topic's, declared (once per confirm
	// channel) before use.
	declare bool
	// mandatory: a message that reaches no queue is returned by the broker
	// and counts as not accepted.
	mandatory bool
}

// Reasons why the broker did not accept a message.
var (
	errNacked   = errors.New("rabbitmq: broker refused the message (basic.nack)")
	errReturned = errors.New("rabbitmq: broker returned the message unroutable (basic.return)")
)

// sendState collects what the broker refused of one send.
type sendState struct {
	refused    []int // not accepted, as the broker said
	refusedErr error // why the first of them was not
}

func (st *sendState) refuse(i int, err error) {
	st.refused = append(st.refused, i)
	if st.refusedErr == nil {
		st.refusedErr = err
	}
}

// result is nil, or the *driver.BatchError of the refused messages.
func (st *sendState) result(t target) error {
	if len(st.refused) == 0 {
		return nil
	}
	slices.Sort(st.refused)
	return &driver.BatchError{Failed: st.refused, Err: fmt.Errorf("rabbitmq: publish to %q: %w", t.exchange, st.refusedErr)}
}

// validateHeaders checks the headers of msgs before anything is sent.
func validateHeaders(t target, msgs []amqp.Publishing) error {
	for i := range msgs {
		if err := msgs[i].Headers.Validate(); err != nil {
			return fmt.Errorf("rabbitmq: publish to %q: %w", t.exchange, err)
		}
	}
	return nil
}

// send publishes msgs to t and returns once the broker confirmed every one.
// Messages whose confirmation is lost with the connection are published again
// on the next connection, in their order in msgs (so a message may arrive
// twice, never zero times after a nil return). It returns nil when the broker
// accepted every message; a *driver.BatchError listing those it refused
// (basic.nack) or returned (mandatory and unroutable), all others being
// accepted; ctx's error if ctx ends first; and the broker's error if it
// closes the channel over a message (for example one over its
// max_message_size), when any subset may have been accepted.
func (p *publisher) send(ctx context.Context, t target, msgs []amqp.Publishing) error {
	if err := validateHeaders(t, msgs); err != nil {
		return err
	}
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	var st sendState
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
		lost, err := cc.publish(ctx, t, msgs, pending, &st)
		if err != nil {
			return err
		}
		if len(lost) == 0 {
			return st.result(t)
		}
		pending = lost
	}
}

// sendOn publishes msgs to t on cc alone (for example a consumer's channel,
// to order the publishes after its acknowledgements) and returns once the
// broker confirmed every one, as send does; but a message whose
// confirmation is lost with the channel is not published again, and its
// fate is an error.
func sendOn(ctx context.Context, cc *confirmChannel, t target, msgs []amqp.Publishing) error {
	if err := validateHeaders(t, msgs); err != nil {
		return err
	}
	pending := make([]int, len(msgs))
	for i := range pending {
		pending[i] = i
	}
	var st sendState
	lost, err := cc.publish(ctx, t, msgs, pending, &st)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return fmt.Errorf("rabbitmq: publish to %q: channel closed before %d of %d messages were confirmed", t.exchange, len(lost), len(msgs))
	}
	return st.result(t)
}

// publish writes msgs[i] for each i of pending to t on cc and waits for
// their confirmations, recording refusals in st. It returns the indexes of
// the messages whose fate was lost with the channel, in batch order, after
// waiting for the channel to be closed; or the broker's error if it closed
// the channel over a publish to t; or ctx's error.
func (cc *confirmChannel) publish(ctx context.Context, t target, msgs []amqp.Publishing, pending []int, st *sendState) ([]int, error) {
	type inflight struct {
		i  int
		dc *amqp.DeferredConfirmation
		m  *mandatory
	}
	sent := make([]inflight, 0, len(pending))
	var unwritten []int // not written: the connection went down
	// One send writes its messages at a time: the writes of a batch do not
	// contend with other sends' message by message, and the sequence
	// numbers of mandatory publishes are known before writing. The lock is
	// released before waiting for the confirmations.
	cc.writeMu.Lock()
	for n, i := range pending {
		var m *mandatory
		if t.mandatory {
			m = cc.expect(t.exchange, t.key, msgs[i].MessageId)
		}
		dc, err := cc.ch.PublishWithDeferredConfirm(t.exchange, t.key, t.mandatory, false, msgs[i])
		if err != nil {
			// The headers are valid: this is an I/O error, and the
			// connection is going down.
			if m != nil {
				cc.forget(m)
			}
			unwritten = pending[n:]
			break
		}
		if testHookPublished != nil {
			testHookPublished(i, dc)
		}
		sent = append(sent, inflight{i, dc, m})
	}
	cc.writeMu.Unlock()
	var lost []int
	for k, f := range sent {
		select {
		case <-f.dc.Done():
		case <-ctx.Done():
			for _, f := range sent[k:] {
				if f.m != nil {
					cc.forget(f.m)
				}
			}
			return nil, ctx.Err()
		}
		if f.dc.Acked() {
			if f.m != nil {
				if r := cc.returnOf(f.m); r != nil {
					st.refuse(f.i, fmt.Errorf("%w: %d %s, exchange %q, routing key %q", errReturned, r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey))
				}
			}
			continue
		}
		if f.m != nil {
			cc.forget(f.m)
		}
		if !cc.ch.IsClosed() {
			st.refuse(f.i, errNacked)
			continue
		}
		lost = append(lost, f.i) // nacked by the channel's closing
	}
	// The unconfirmed messages come before the unwritten ones in the batch:
	// so lost keeps the batch's order, and they are published again in it.
	lost = append(lost, unwritten...)
	if len(lost) == 0 {
		return nil, nil
	}
	// Wait for the channel to be closed (a write may fail before the
	// connection noticed it is lost), then find out why.
	select {
	case <-cc.closed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cc.err != nil && cc.err.Recover && causedBy(cc.err, t.exchange) {
		return nil, fmt.Errorf("rabbitmq: publish to %q: broker closed the channel: %w", t.exchange, cc.err)
	}
	return lost, nil
}

// testHookPublished, when set by a test, is called after each message
// (index i of its batch) is written.
var testHookPublished func(i int, dc *amqp.DeferredConfirmation)

// causedBy reports whether the broker's closing of the shared confirm
// channel with err may have been caused by a publish to exchange. A
// missing exchange (404) is named in the error: publishes to other
// exchanges were innocent and are published again on the next channel.
// Other refusals (a message over max_message_size) do not say which
// message caused them, and fail every publish in flight.
func causedBy(err *amqp.Error, exchange string) bool {
	return err.Code != amqp.NotFound || strings.Contains(err.Reason, "'"+exchange+"'")
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
			d.err = p.declare(ctx, exchange)
			if d.err != nil {
				cc.mu.Lock()
				delete(cc.exchanges, exchange)
				cc.mu.Unlock()
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

// connection returns the current publishing connection, or nil while it is
// down.
func (p *publisher) connection() *amqp.Connection {
	p.link.mu.Lock()
	defer p.link.mu.Unlock()
	return p.link.conn
}

// close closes the confirm channel; in-flight sends fail over to the next
// connection, or return driver.ErrClosed once the link is closed.
func (p *publisher) close() {
	p.mu.Lock()
	cc := p.cur
	p.cur = nil
	p.mu.Unlock()
	if cc != nil {
		_ = cc.ch.Close()
	}
}
