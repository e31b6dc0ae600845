package nats

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard-go/switchyard/pubsub/driver"
)

// errStreamGone is a transient error: a topic's stream was deleted while
// the broker used it, and is created again on the next try.
var errStreamGone = &jetstream.APIError{Code: 503, Description: "stream deleted; creating it again"}

// topicStreamConfig is the configuration of a topic's stream when the
// broker creates it.
func (b *broker) topicStreamConfig(topic string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        b.names.stream(topic),
		Description: "Switchyard topic " + topic,
		Subjects:    []string{b.names.topicSubject(topic), b.names.groupSubjects(topic)},
		Retention:   b.retention,
		Discard:     jetstream.DiscardNew,
		MaxAge:      b.cfg.MaxAge,
		MaxBytes:    orUnlimited(b.cfg.MaxBytes),
		MaxMsgs:     orUnlimited(b.cfg.MaxMsgs),
		MaxMsgSize:  -1,
		Storage:     b.storage(),
		Replicas:    b.cfg.Replicas,
		Duplicates:  b.cfg.DuplicateWindow,
	}
}

// deadLetterStreamConfig is the configuration of the namespace's
// dead-letter stream when the broker creates it.
func (b *broker) deadLetterStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:                 b.names.deadLetterStream(),
		Description:          "Switchyard dead letters of namespace " + b.cfg.Namespace,
		Subjects:             []string{b.names.deadLetterSubjects()},
		Retention:            jetstream.LimitsPolicy,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgsPerSubject:    int64(b.cfg.DeadLetterMax),
		MaxBytes:             orUnlimited(b.cfg.DeadLetterMaxBytes),
		MaxMsgs:              -1,
		MaxMsgSize:           -1,
		Storage:              b.storage(),
		Replicas:             b.cfg.Replicas,
		Duplicates:           b.cfg.DuplicateWindow,
	}
}

func (b *broker) storage() jetstream.StorageType {
	if b.cfg.Storage == StorageMemory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// groupConsumerConfigs are the configurations of group's main consumer
// (topic messages, from its creation on) and own consumer (its own
// subject).
func (b *broker) groupConsumerConfigs(topic, group string) (main, own jetstream.ConsumerConfig) {
	main = jetstream.ConsumerConfig{
		Durable:       consumerName(group),
		Description:   "Switchyard group " + group + " of topic " + topic,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    -1,
		FilterSubject: b.names.topicSubject(topic),
		MaxAckPending: b.cfg.MaxAckPending,
	}
	own = main
	own.Durable = ownConsumerName(group)
	own.Description = "Switchyard group " + group + " of topic " + topic + ": its own messages"
	own.DeliverPolicy = jetstream.DeliverAllPolicy
	own.FilterSubject = b.names.groupSubject(topic, group)
	return main, own
}

// ensureStream makes sure topic's stream exists, creating it with the
// broker's settings if not; an existing stream is used as it is. It is
// remembered, so that later calls do no I/O; forget undoes that.
// It remembers the stream's retention, for the janitor. It does not
// retry: callers run it inside broker.retry.
func (b *broker) ensureStream(ctx context.Context, topic string) error {
	if _, ok := b.streams.Load(topic); ok {
		return nil
	}
	retention, err := b.createStream(ctx, b.topicStreamConfig(topic))
	if err != nil {
		return fmt.Errorf("create stream %s of topic %s: %w", b.names.stream(topic), topic, err)
	}
	b.streams.Store(topic, retention)
	return nil
}

// createStream creates the stream of cfg unless a stream of that name
// exists, and returns the stream's retention.
func (b *broker) createStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.RetentionPolicy, error) {
	s, err := b.js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = b.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = b.js.Stream(ctx, cfg.Name) // created meanwhile by another client
		}
	}
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().Config.Retention, nil
}

// ensureDeadLetterStream makes sure the namespace's dead-letter stream
// exists, as ensureStream does for topics.
func (b *broker) ensureDeadLetterStream(ctx context.Context) error {
	if b.dlReady.Load() {
		return nil
	}
	if _, err := b.createStream(ctx, b.deadLetterStreamConfig()); err != nil {
		return err
	}
	b.dlReady.Store(true)
	return nil
}

// group is the pair of consumers of a group.
type group struct {
	stream    string
	main, own jetstream.Consumer
}

// ensureGroup makes sure topic's stream and group's two consumers exist,
// creating what does not; existing ones are used as they are. Transient
// errors are retried within RequestTimeout.
func (b *broker) ensureGroup(ctx context.Context, topic, groupName string) (*group, error) {
	g := &group{stream: b.names.stream(topic)}
	mainCfg, ownCfg := b.groupConsumerConfigs(topic, groupName)
	err := b.retry(ctx, "create group "+groupName+" of topic "+topic, func(ctx context.Context) error {
		if err := b.ensureStream(ctx, topic); err != nil {
			return err
		}
		var err error
		// The own consumer first: once the main one exists the group
		// exists, and it must be complete.
		if g.own, err = b.ensureConsumer(ctx, g.stream, ownCfg); err != nil {
			return err
		}
		g.main, err = b.ensureConsumer(ctx, g.stream, mainCfg)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			// Deleted behind the broker's back: create it again.
			b.streams.Delete(topic)
			return errStreamGone
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// ensureConsumer returns the consumer of cfg, creating it if it does not
// exist.
func (b *broker) ensureConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := b.js.Consumer(ctx, stream, cfg.Durable)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return c, err
	}
	c, err = b.js.CreateConsumer(ctx, stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return b.js.Consumer(ctx, stream, cfg.Durable) // created meanwhile
	}
	return c, err
}

// existingGroup returns nil when group of topic exists, or an error
// wrapping driver.ErrNotFound when it (or its topic's stream) does not.
func (b *broker) existingGroup(ctx context.Context, topic, groupName string) error {
	return b.retry(ctx, "look up group "+groupName+" of topic "+topic, func(ctx context.Context) error {
		_, err := b.js.Consumer(ctx, b.names.stream(topic), consumerName(groupName))
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("group %s of topic %s: %w", groupName, topic, driver.ErrNotFound)
		}
		return err
	})
}

// purge removes the messages of subject from stream and returns how many
// it removed.
func (b *broker) purge(ctx context.Context, stream, subject string) (int, error) {
	return b.purgeRequest(ctx, stream, jetstream.StreamPurgeRequest{Subject: subject})
}
