package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/switchyard-go/switchyard/pubsub"
)

// Outbox stores messages in the application's database transactions and
// relays them to a broker after commit. Make one with New per database and
// table; it is safe for concurrent use.
type Outbox struct {
	db  *sql.DB
	cfg Config
	d   dialect
	t   tables

	mu     sync.Mutex
	wakers map[chan struct{}]struct{} // one per running relay
}

// New returns the Outbox of table cfg.Table in db, with cfg's defaults
// applied (see Config). It validates cfg, joining every problem (each
// wraps pubsub.ErrInvalidOption), and does no I/O: create the tables with
// Migrate or the SQL of Schema.
func New(db *sql.DB, cfg Config) (*Outbox, error) {
	if db == nil {
		return nil, fmt.Errorf("outbox: %w: nil *sql.DB", pubsub.ErrInvalidOption)
	}
	cfg.setDefaults()
	errs := []error{cfg.validate()}
	t, err := newTables(cfg.Table, cfg.InboxTable)
	errs = append(errs, err)
	if cfg.Dialect.impl == nil {
		cfg.Dialect, err = detect(db)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Outbox{db: db, cfg: cfg, d: cfg.Dialect.impl, t: t, wakers: map[chan struct{}]struct{}{}}, nil
}

// Publish stores msgs in tx, to be published to topic by a relay (Run)
// once tx commits; if tx rolls back, they are never published. It
// validates the topic name and the messages before any I/O
// (pubsub.ErrInvalidTopic; pubsub.ErrInvalidMessage for a nil message, or
// an ID, Key or metadata that is not UTF-8 text, or an ID or Key with a
// NUL), sets the ID of messages without one (the relay publishes them with
// that ID, every time), and stores them in order. The broker's own limits
// (message size) are checked by the relay: see Rejected.
//
// Per topic and Key, messages are published in the order their
// transactions commit, and in the order given within one transaction. On
// PostgreSQL, Publish with a Key takes a transaction-scoped lock on the
// key, so transactions that publish to one key are serialized from that
// Publish until they end; take keys in the same order in every
// transaction, or PostgreSQL may abort one of two with a deadlock error,
// as it would for row locks. Messages without a Key have no order.
//
// It blocks for the inserts (and, for a key, until other transactions
// holding the key end, or ctx ends). It is safe for concurrent use with
// different transactions. Context errors come back unwrapped.
func (o *Outbox) Publish(ctx context.Context, tx *sql.Tx, topic string, msgs ...*pubsub.Message) error {
	if tx == nil {
		return fmt.Errorf("outbox: %w: nil *sql.Tx", pubsub.ErrInvalidOption)
	}
	if len(o.cfg.StoreMiddleware) == 0 {
		return o.store(ctx, tx, topic, msgs)
	}
	f := pubsub.PublishFunc(func(ctx context.Context, topic string, msgs []*pubsub.Message) error {
		return o.store(ctx, tx, topic, msgs)
	})
	for i := len(o.cfg.StoreMiddleware) - 1; i >= 0; i-- {
		f = o.cfg.StoreMiddleware[i](f)
	}
	return f(ctx, topic, msgs)
}

// store stores msgs in tx.
func (o *Outbox) store(ctx context.Context, tx *sql.Tx, topic string, msgs []*pubsub.Message) error {
	rows, err := encode(topic, msgs)
	if err != nil || len(rows) == 0 {
		return err
	}
	if err := o.d.insert(ctx, tx, o.t, topic, rows); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return ctx.Err()
		}
		return err
	}
	o.wake()
	return nil
}

// Tx returns a pubsub.Publisher whose Publish stores messages in tx, as
// o.Publish(ctx, tx, ...) does. It is the typed form: a pubsub.Topic[T]
// publishes through it,
//
//	err := topic.Publish(ctx, ob.Tx(tx), event, pubsub.WithKey(id))
//
// with the topic's codec, content type and CloudEvents attributes. Its
// Close does nothing. Use it only while tx is open.
func (o *Outbox) Tx(tx *sql.Tx) pubsub.Publisher { return txPublisher{o: o, tx: tx} }

type txPublisher struct {
	o  *Outbox
	tx *sql.Tx
}

func (p txPublisher) Publish(ctx context.Context, topic string, msgs ...*pubsub.Message) error {
	return p.o.Publish(ctx, p.tx, topic, msgs...)
}

func (txPublisher) Close() error { return nil }

// Pending counts the rows waiting to be published and the age of the
// oldest, for health checks. It blocks for one query.
func (o *Outbox) Pending(ctx context.Context) (Pending, error) {
	p, err := o.d.pending(ctx, o.db, o.t)
	if err != nil {
		return Pending{}, fmt.Errorf("outbox: count pending rows: %w", err)
	}
	return p, nil
}

// wake tells the relays of this Outbox that rows were stored (they may not
// be committed yet).
func (o *Outbox) wake() {
	o.mu.Lock()
	for c := range o.wakers {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	o.mu.Unlock()
}

func (o *Outbox) addWaker() chan struct{} {
	c := make(chan struct{}, 1)
	o.mu.Lock()
	o.wakers[c] = struct{}{}
	o.mu.Unlock()
	return c
}

func (o *Outbox) removeWaker(c chan struct{}) {
	o.mu.Lock()
	delete(o.wakers, c)
	o.mu.Unlock()
}
