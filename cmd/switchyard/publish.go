package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchyard-go/switchyard/pubsub"
)

// publishOptions are publish's flags.
type publishOptions struct {
	file  string
	json  bool
	key   string
	meta  []string
	batch int
	force bool
}

const publishLong = `Publish messages to TOPIC and print the ID of each, one per line, once the
broker has durably accepted it.

Messages come from the arguments after TOPIC, or from --file, or else from
standard input: one message per line (empty lines are skipped), or with
--json a stream of JSON objects:

  {"payload": "text", "key": "k", "metadata": {"a": "b"}}
  {"payload_base64": "AP8=", "id": "my-id"}

"payload" is text (UTF-8), "payload_base64" any bytes; "id" is kept when
given; other fields (such as tail --json's "attempt") are ignored, so
"switchyard tail T --json | switchyard publish T2 --json" copies messages.
--key and --meta set the key and metadata of messages that do not give
their own.

Messages are sent in batches (--batch) as they are read; if a batch fails,
the IDs printed before it were accepted, and the error says which messages
of the batch were not, where the broker tells.

Unless --force, publish first asks the broker for the topic's groups and
refuses a topic that does not exist or has no group, since no broker keeps a
message that no group would receive. RabbitMQ tells only whether the topic
exists (see switchyard groups list --help), so there a topic without groups
is not refused.`

func (a *app) publishCmd() *cobra.Command {
	var o publishOptions
	c := &cobra.Command{
		Use:   "publish TOPIC [MESSAGE...]",
		Short: "Publish messages from arguments, a file or standard input, and print their IDs",
		Long:  publishLong,
		Example: `  switchyard publish orders '{"id": 7}' --key customer-42 --meta source=ops
  switchyard publish orders --file replay.txt
  switchyard tail orders --json -n 10 | switchyard publish orders-copy --json`,
		Args: minArgs("TOPIC"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.publish(args[0], args[1:], o)
		}),
	}
	f := c.Flags()
	f.StringVarP(&o.file, "file", "f", "", "read messages from this file (- for standard input)")
	f.BoolVar(&o.json, "json", false, "messages are JSON objects with payload or payload_base64, key, metadata, id")
	f.StringVar(&o.key, "key", "", "ordering key of messages that do not give their own")
	f.StringArrayVar(&o.meta, "meta", nil, "metadata k=v for every message (repeatable; a message's own metadata wins)")
	f.IntVar(&o.batch, "batch", 100, "messages per Publish call (1 when standard input is a terminal)")
	f.BoolVar(&o.force, "force", false, "publish even when the broker says the topic does not exist or has no group")
	return c
}

// publish runs the publish command.
func (a *app) publish(topic string, args []string, o publishOptions) error {
	if err := checkNames(topic, ""); err != nil {
		return err
	}
	if o.file != "" && len(args) > 0 {
		return usagef("give messages as arguments or with --file, not both")
	}
	if o.batch < 1 {
		return usagef("--batch %d: want at least 1", o.batch)
	}
	meta := map[string]string{}
	for _, kv := range o.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("--meta %q: want KEY=VALUE", kv)
		}
		meta[k] = v
	}
	next, closeSrc, err := a.messageSource(args, o)
	if err != nil {
		return err
	}
	defer closeSrc()

	b, err := a.open()
	if err != nil {
		return err
	}
	defer a.closeBroker(b)
	if !o.force {
		if err := a.checkTopicHasGroups(b, topic); err != nil {
			return err
		}
	}

	batch := make([]*pubsub.Message, 0, o.batch)
	published := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ctx, cancel := a.call()
		defer cancel()
		err := b.Publish(ctx, topic, batch...)
		if err != nil {
			var pe *pubsub.PublishError
			if errors.As(err, &pe) {
				failed := map[int]bool{}
				for _, i := range pe.Failed {
					failed[i] = true
				}
				for i, m := range batch {
					if !failed[i] {
						fmt.Fprintln(a.stdout, m.ID)
					}
				}
			}
			if a.ctx.Err() != nil {
				return a.ctx.Err()
			}
			return fmt.Errorf("publish to %s after %d messages: %w", topic, published, err)
		}
		for _, m := range batch {
			fmt.Fprintln(a.stdout, m.ID)
		}
		published += len(batch)
		batch = batch[:0]
		return nil
	}
	size := o.batch
	if len(args) == 0 && o.file == "" && a.terminal(a.stdin) {
		size = 1 // someone is typing: publish each line at once
		fmt.Fprintln(a.stderr, "switchyard: reading messages from standard input, one per line; end with Ctrl-D")
	}
	for n := 1; ; n++ {
		m, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("message %d: %w (the %d messages before it were published)", n, err, published)
		}
		if m.Key == "" {
			m.Key = o.key
		}
		if len(meta) > 0 {
			md := maps.Clone(meta)
			maps.Copy(md, m.Metadata)
			m.Metadata = md
		}
		batch = append(batch, m)
		if len(batch) >= size {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if published == 0 {
		fmt.Fprintln(a.stderr, "switchyard: no messages to publish")
	}
	return nil
}

// checkTopicHasGroups returns an error when the broker says that topic does
// not exist or has no group; a broker that cannot list groups
// (errors.ErrUnsupported, RabbitMQ for a topic that exists) is not an error.
func (a *app) checkTopicHasGroups(b broker, topic string) error {
	ctx, cancel := a.call()
	defer cancel()
	groups, err := b.ListGroups(ctx, topic)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return nil
	case errors.Is(err, pubsub.ErrNotFound):
		return fmt.Errorf("topic %s does not exist (create a group first: switchyard groups create %s GROUP; or give --force)", topic, topic)
	case err != nil:
		return fmt.Errorf("list the groups of %s: %w", topic, err)
	case len(groups) == 0:
		return fmt.Errorf("topic %s has no group, so no broker would keep the messages (create one: switchyard groups create %s GROUP; or give --force)", topic, topic)
	}
	return nil
}

// messageSource returns a function giving the messages to publish one by
// one (io.EOF after the last), and one closing the input.
func (a *app) messageSource(args []string, o publishOptions) (next func() (*pubsub.Message, error), closeFn func(), err error) {
	closeFn = func() {}
	if len(args) > 0 {
		i := 0
		return func() (*pubsub.Message, error) {
			if i == len(args) {
				return nil, io.EOF
			}
			arg := args[i]
			i++
			if !o.json {
				return &pubsub.Message{Payload: []byte(arg)}, nil
			}
			d := json.NewDecoder(strings.NewReader(arg))
			m, err := decodeMessage(d)
			if err == io.EOF {
				return nil, fmt.Errorf("argument %d is not a JSON object", i)
			}
			if err == nil && d.More() {
				err = fmt.Errorf("argument %d holds more than one JSON value", i)
			}
			return m, err
		}, closeFn, nil
	}
	var in io.Reader = a.stdin
	if o.file != "" && o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return nil, nil, err
		}
		in, closeFn = f, func() { _ = f.Close() }
	}
	if o.json {
		d := json.NewDecoder(bufio.NewReader(in))
		return func() (*pubsub.Message, error) { return decodeMessage(d) }, closeFn, nil
	}
	r := bufio.NewReader(in)
	return func() (*pubsub.Message, error) {
		for {
			line, err := r.ReadBytes('\n')
			if len(line) == 0 && err != nil {
				return nil, err // io.EOF at the end
			}
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if len(line) > 0 {
				return &pubsub.Message{Payload: line}, nil
			}
		}
	}, closeFn, nil
}

// decodeMessage reads the next JSON object of d as a message.
func decodeMessage(d *json.Decoder) (*pubsub.Message, error) {
	var j jsonMessage
	if err := d.Decode(&j); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("not a JSON message object: %w", err)
	}
	p, err := j.payloadOf()
	if err != nil {
		return nil, err
	}
	return &pubsub.Message{ID: j.ID, Key: j.Key, Metadata: j.Metadata, Payload: p}, nil
}
