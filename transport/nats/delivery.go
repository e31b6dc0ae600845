package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// delivery is a message delivered to a member and not settled yet.
type delivery struct {
	r       *receiver
	f       *feed // the consumer it came from
	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	attempt int
	settled bool // guarded by r.mu
	// retryAs is, while the member holds d for a retry after a delay (see
	// retryLater), the attempt it is to come back as; guarded by r.mu.
	retryAs int
}

// Message implements driver.Delivery: a new copy on each call, with
// Attempt set from the delivery count.
func (d *delivery) Message() *driver.Message {
	m := decodeMessage(d.msg.Headers(), d.msg.Data(), d.fallbackID)
	m.Attempt = d.attempt
	return m
}

// fallbackID is the ID of a message that came without one: its stream
// and sequence.
func (d *delivery) fallbackID() string {
	return d.meta.Stream + ":" + strconv.FormatUint(d.meta.Sequence.Stream, 10)
}

// claim marks d settled, or says that it was (its receiver closed and
// released it, another settlement came first, or it waits for a retry).
func (d *delivery) claim() error { return d.take(false) }

// take is claim; own says that the member itself takes d (its retry
// timer, Close), which it may do while d waits for its retry.
func (d *delivery) take(own bool) error {
	r := d.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.settled || d.retryAs > 0 && !own {
		return fmt.Errorf("nats: message %s of group %s already settled or released: %w", d.fallbackID(), r.group, driver.ErrClosed)
	}
	d.settled = true
	delete(r.held, d)
	if d.retryAs == 0 {
		d.f.freeRoom()
	}
	return nil
}

// freeRoom gives back the room a held message took in f. The caller
// holds receiver.mu.
func (f *feed) freeRoom() {
	f.held--
	select {
	case f.room <- struct{}{}:
	default:
	}
}

// unclaim undoes claim after a settlement failed, so that d is held (and
// kept alive) again.
func (d *delivery) unclaim() {
	r := d.r
	r.mu.Lock()
	defer r.mu.Unlock()
	d.settled = false
	r.held[d] = struct{}{}
	d.f.held++
}

// Ack implements driver.Delivery. The acknowledgement is not waited for;
// if it is lost, the server delivers the message again after AckWait.
func (d *delivery) Ack(context.Context) error {
	if err := d.claim(); err != nil {
		return err
	}
	if err := d.msg.Ack(); err != nil {
		return fmt.Errorf("nats: ack: %w", err)
	}
	return nil
}

// Retry implements driver.Delivery. When attempt is the next one and
// delay is positive, the server delivers the message again after delay (a
// negative acknowledgement with delay; its delivery count makes the
// Attempt), except on a server that may drop redeliveries (before
// 2.10.16, see redeliverySafe): there the member waits a delay shorter
// than AckWait itself (retryLater). Otherwise (the portable layer hands a
// message back with no delay when Shutdown's deadline cuts its handler
// off, and with a jump in the attempt count when its dead letter could
// not be stored) the message is published to the group's own subject with
// the attempt in x-switchyard-attempt, then acknowledged, and comes back
// at once. An immediate negative acknowledgement would do for the first
// case but for the same bug of NATS Server before 2.10.16: a redelivery
// that finds only expired pull requests, or those of members that have
// gone (as the member handing it back is about to), is dropped until
// AckWait, and the message before it is delivered again as new, delivery
// count 1.
func (d *delivery) Retry(ctx context.Context, delay time.Duration, attempt int) error {
	if attempt == d.attempt+1 && delay > 0 && d.r.b.holdRetries && delay < d.r.b.cfg.AckWait {
		return d.retryLater(delay, attempt)
	}
	if err := d.claim(); err != nil {
		return err
	}
	if attempt == d.attempt+1 && delay > 0 {
		if err := d.msg.NakWithDelay(delay); err != nil {
			return fmt.Errorf("nats: negative acknowledgement: %w", err)
		}
		return nil
	}
	return d.r.b.redeliver(ctx, []*delivery{d}, []int{attempt}, false)
}

// retryLater is Retry on a server that may drop redeliveries: the member
// keeps d for delay (the keep-alive loop reports progress on it, and Close
// releases it as the attempt it waits for), without counting it in what it
// fetches, then publishes it to the group's own subject with attempt in
// x-switchyard-attempt and acknowledges it, as Release does. The copy is
// a new message, which the server never drops. If the member fails
// meanwhile, the server delivers the message again after AckWait.
func (d *delivery) retryLater(delay time.Duration, attempt int) error {
	r := d.r
	r.mu.Lock()
	if d.settled || d.retryAs > 0 {
		r.mu.Unlock()
		return fmt.Errorf("nats: message %s of group %s already settled or released: %w", d.fallbackID(), r.group, driver.ErrClosed)
	}
	d.retryAs = attempt
	d.f.freeRoom()
	r.mu.Unlock()
	time.AfterFunc(delay, func() {
		if err := r.b.redeliver(context.Background(), []*delivery{d}, []int{attempt}, true); err != nil {
			r.log.Warn("nats: hand a message back after its retry delay; the server delivers it again after AckWait",
				"stream", r.stream, "group", r.group, "seq", d.meta.Sequence.Stream, "err", err)
		}
	})
	return nil
}

// Release implements driver.Delivery: the message is published to the
// group's own subject with its Attempt in x-switchyard-attempt, then
// acknowledged, so that the delivery it had does not count. (A negative
// acknowledgement would count: JetStream counts every delivery.)
func (d *delivery) Release(ctx context.Context) error {
	if err := d.claim(); err != nil {
		return err
	}
	return d.r.b.redeliver(ctx, []*delivery{d}, []int{d.attempt}, false)
}

// DeadLetter implements driver.Delivery: dl is published to the group's
// dead-letter subject (with a Nats-Msg-Id derived from the message's place
// in its stream, so that storing it again after a failed acknowledgement
// keeps one copy), then the message is acknowledged and the server's
// answer waited for. If either fails, the message stays held.
func (d *delivery) DeadLetter(ctx context.Context, dl *driver.Message) error {
	if err := d.claim(); err != nil {
		return err
	}
	b, r := d.r.b, d.r
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	subject := b.names.deadLetterSubject(r.topic, r.group)
	nm := encodeCopy(subject, dl, "dl-"+d.placeID(), 0)
	if err := b.storeDeadLetter(ctx, nm); err != nil {
		d.unclaim()
		return fmt.Errorf("nats: store dead letter of group %s of topic %s: %w", r.group, r.topic, err)
	}
	if err := d.msg.DoubleAck(ctx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		d.unclaim()
		return fmt.Errorf("nats: dead letter stored, but the acknowledgement failed: %w", err)
	}
	return nil
}

// placeID identifies this delivery of the message: its stream, stream
// sequence and store time, the consumer (group) it was delivered to, and
// the delivery count.
func (d *delivery) placeID() string {
	return d.fallbackID() + "-" + strconv.FormatInt(d.meta.Timestamp.UnixNano(), 36) + "-" + d.meta.Consumer + "-" + strconv.FormatUint(d.meta.NumDelivered, 10)
}

// storeDeadLetter publishes nm to the dead-letter stream, creating the
// stream if it does not exist.
func (b *broker) storeDeadLetter(ctx context.Context, nm *natsgo.Msg) error {
	if err := b.ensureDeadLetterStream(ctx); err != nil {
		return err
	}
	_, err := b.js.PublishMsg(ctx, nm)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders) {
		// Deleted behind our back, or it does not take the subject.
		b.dlReady.Store(false)
		if err := b.ensureDeadLetterStream(ctx); err != nil {
			return err
		}
		_, err = b.js.PublishMsg(ctx, nm)
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders) {
			return fmt.Errorf("stream %s does not take subject %s: %w", b.names.deadLetterStream(), nm.Subject, err)
		}
	}
	return err
}

// redeliver publishes the messages of ds, claimed by the caller, to their
// group's own subject with attempts[i] as their Attempt, and acknowledges
// each one whose copy was stored. A message whose copy was not stored is
// handed back with a negative acknowledgement instead (it is then
// delivered again at once, counting one attempt). all says whether the
// receiver released them at close, when they were not claimed one by one.
func (b *broker) redeliver(ctx context.Context, ds []*delivery, attempts []int, all bool) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(ds))
	errs := make([]error, len(ds))
	skip := make([]bool, len(ds))
	for i, d := range ds {
		if all && d.take(true) != nil {
			skip[i] = true // settled meanwhile
			continue
		}
		r := d.r
		nm := encodeCopy(b.names.groupSubject(r.topic, r.group), d.Message(), "re-"+d.placeID(), attempts[i])
		futures[i], errs[i] = b.js.PublishMsgAsync(nm, jetstream.WithStallWait(b.cfg.RequestTimeout))
	}
	var first error
	for i, d := range ds {
		if skip[i] {
			continue
		}
		if f := futures[i]; f != nil {
			select {
			case <-f.Ok():
			case errs[i] = <-f.Err():
			case <-ctx.Done():
				errs[i] = ctx.Err()
			}
		}
		if errs[i] == nil {
			errs[i] = d.msg.DoubleAck(ctx)
			if errs[i] == nil || errors.Is(errs[i], jetstream.ErrMsgAlreadyAckd) {
				continue
			}
		} else {
			_ = d.msg.Nak()
		}
		if first == nil {
			first = errs[i]
		}
	}
	return first
}
