package nats

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// deadLetter is a stored dead letter and its sequence in the dead-letter
// stream.
type deadLetter struct {
	seq uint64
	msg *driver.Message
}

// ListDeadLetters implements driver.Broker: it reads the group's
// dead-letter subject with direct message reads (next message of the
// subject from a sequence on), which consume nothing. Each read is one
// request; listing all of DeadLetterMax dead letters takes that many.
func (b *broker) ListDeadLetters(ctx context.Context, topic, group string, limit int) ([]*driver.Message, error) {
	dls, err := b.deadLetters(ctx, topic, group, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*driver.Message, len(dls))
	for i, dl := range dls {
		out[i] = dl.msg
	}
	return out, nil
}

// deadLetters returns up to limit (0: all) dead letters of the group,
// oldest first, or an error wrapping driver.ErrNotFound when the group
// does not exist.
func (b *broker) deadLetters(ctx context.Context, topic, group string, limit int) ([]deadLetter, error) {
	if err := b.existingGroup(ctx, topic, group); err != nil {
		return nil, err
	}
	subject := b.names.deadLetterSubject(topic, group)
	var out []deadLetter
	err := b.retry(ctx, "list dead letters of group "+group+" of topic "+topic, func(ctx context.Context) error {
		out = out[:0]
		s, err := b.js.Stream(ctx, b.names.deadLetterStream())
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil // no dead letter yet in the namespace
		}
		if err != nil {
			return err
		}
		for seq := uint64(1); limit <= 0 || len(out) < limit; {
			m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			dl := decodeMessage(m.Header, m.Data, func() string { return fmt.Sprintf("%s:%d", m.Subject, m.Sequence) })
			out = append(out, deadLetter{seq: m.Sequence, msg: dl})
			seq = m.Sequence + 1
		}
		return nil
	})
	return out, err
}

// ReplayDeadLetters implements driver.Broker: each dead letter chosen is
// published, as driver.Revive makes it, to the group's own subject, which
// only that group's second consumer reads, and then deleted from the
// dead-letter stream.
func (b *broker) ReplayDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error) {
	dls, err := b.deadLetters(ctx, topic, group, 0)
	if err != nil {
		return 0, err
	}
	if _, err := b.ensureGroup(ctx, topic, group); err != nil {
		return 0, err
	}
	want := driver.NewIDSet(ids)
	subject := b.names.groupSubject(topic, group)
	n := 0
	for _, dl := range dls {
		if !want.Match(dl.msg.ID) {
			continue
		}
		nm := encodeCopy(subject, driver.Revive(dl.msg), "replay-"+nuid.Next(), 0)
		err := b.retry(ctx, "replay dead letter "+dl.msg.ID, func(ctx context.Context) error {
			_, err := b.js.PublishMsg(ctx, nm)
			return err
		})
		if err == nil {
			err = b.deleteDeadLetter(ctx, dl.seq)
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// PurgeDeadLetters implements driver.Broker: all of the group's dead
// letters are purged in one request; chosen ones are deleted one by one.
func (b *broker) PurgeDeadLetters(ctx context.Context, topic, group string, ids []string) (int, error) {
	if len(ids) == 0 {
		if err := b.existingGroup(ctx, topic, group); err != nil {
			return 0, err
		}
		var n int
		err := b.retry(ctx, "purge dead letters of group "+group+" of topic "+topic, func(ctx context.Context) error {
			var err error
			n, err = b.purge(ctx, b.names.deadLetterStream(), b.names.deadLetterSubject(topic, group))
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				n, err = 0, nil
			}
			return err
		})
		return n, err
	}
	dls, err := b.deadLetters(ctx, topic, group, 0)
	if err != nil {
		return 0, err
	}
	want := driver.NewIDSet(ids)
	n := 0
	for _, dl := range dls {
		if !want.Match(dl.msg.ID) {
			continue
		}
		if err := b.deleteDeadLetter(ctx, dl.seq); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// deleteDeadLetter deletes the dead letter at seq; one already gone is no
// error.
func (b *broker) deleteDeadLetter(ctx context.Context, seq uint64) error {
	return b.retry(ctx, fmt.Sprintf("delete dead letter %d", seq), func(ctx context.Context) error {
		s, err := b.js.Stream(ctx, b.names.deadLetterStream())
		if err == nil {
			err = s.DeleteMsg(ctx, seq)
		}
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		return err
	})
}
