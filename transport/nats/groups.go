package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/pubsub/driver"
)

var _ driver.GroupLister = (*broker)(nil)

// ListGroups implements driver.GroupLister. The groups are the consumers of
// topic's stream (each group's main consumer; its "-own" consumer is
// counted with it), read with one consumer-list request; their dead letters
// are counted per subject of the dead-letter stream with one stream-info
// request. Both counts are exact at the moment the server answered each
// request (see the package documentation, "Topic mapping"). A topic
// without a stream returns an error wrapping driver.ErrNotFound.
// Transient errors are retried within RequestTimeout.
func (b *broker) ListGroups(ctx context.Context, topic string) ([]driver.GroupInfo, error) {
	var out []driver.GroupInfo
	err := b.retry(ctx, "list the groups of topic "+topic, func(ctx context.Context) error {
		var err error
		out, err = b.listGroups(ctx, topic)
		return err
	})
	return out, err
}

// listGroups is one try of ListGroups.
func (b *broker) listGroups(ctx context.Context, topic string) ([]driver.GroupInfo, error) {
	s, err := b.js.Stream(ctx, b.names.stream(topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("topic %s (stream %s): %w", topic, b.names.stream(topic), driver.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	infos := map[string]*jetstream.ConsumerInfo{} // by consumer name
	list := s.ListConsumers(ctx)
	for ci := range list.Info() {
		infos[ci.Name] = ci
	}
	if err := list.Err(); err != nil {
		return nil, err
	}
	dead, err := b.deadLetterCounts(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := []driver.GroupInfo{}
	for name, ci := range infos {
		group, ok := groupOfConsumer(ci, topic)
		if !ok {
			continue
		}
		backlog := pending(ci)
		if own := infos[name+ownSuffix]; own != nil {
			backlog += pending(own)
		}
		out = append(out, driver.GroupInfo{
			Name:        group,
			Backlog:     backlog,
			DeadLetters: int(dead[b.names.deadLetterSubject(topic, group)]),
		})
	}
	slices.SortFunc(out, func(x, y driver.GroupInfo) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// pending is what a consumer holds that no handler finished with: messages
// not delivered yet, and messages delivered and not acknowledged (held by
// a member, or waiting out a retry's delay after a negative
// acknowledgement).
func pending(ci *jetstream.ConsumerInfo) int {
	return int(ci.NumPending) + ci.NumAckPending
}

// deadLetterCounts returns how many dead letters each dead-letter subject
// of topic's groups holds (none when the namespace's dead-letter stream
// does not exist yet).
func (b *broker) deadLetterCounts(ctx context.Context, topic string) (map[string]uint64, error) {
	s, err := b.js.Stream(ctx, b.names.deadLetterStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Group names are one subject token (encoded), so "*" matches the
	// groups of topic and no other topic's.
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(b.names.deadLetterSubject(topic, "")+"*"))
	if err != nil {
		return nil, err
	}
	return info.State.Subjects, nil
}

// groupOfConsumer returns the name of the group whose main consumer ci is,
// or false when ci is a group's own consumer or not a group's consumer:
// the name decoded from the consumer's name, or, for a consumer name that
// was shortened (see limit), read from the description that the broker
// gives the consumers it creates.
func groupOfConsumer(ci *jetstream.ConsumerInfo, topic string) (string, bool) {
	if strings.HasSuffix(ci.Name, ownSuffix) {
		return "", false
	}
	if g, ok := decode(ci.Name); ok && consumerName(g) == ci.Name {
		return g, true
	}
	g, ok := strings.CutPrefix(ci.Config.Description, "Switchyard group ")
	if !ok {
		return "", false
	}
	g, ok = strings.CutSuffix(g, " of topic "+topic)
	if !ok || pubsub.ValidateGroup(g) != nil || consumerName(g) != ci.Name {
		return "", false
	}
	return g, true
}

// decode inverts encode: it returns the name that s encodes, or false when
// s is not an encoding (a shortened name, or another client's consumer
// name with characters encode never writes).
func decode(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_':
			b.WriteByte('.')
		case c == '-':
			if i+1 == len(s) {
				return "", false
			}
			i++
			switch s[i] {
			case '-':
				b.WriteByte('-')
			case '_':
				b.WriteByte('_')
			default:
				return "", false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	if b.Len() == 0 || pubsub.ValidateGroup(b.String()) != nil {
		return "", false
	}
	return b.String(), true
}
