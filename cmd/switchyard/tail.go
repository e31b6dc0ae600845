package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchyard-go/switchyard/pubsub"
)

// tailOptions are tail's flags.
type tailOptions struct {
	group string
	n     int
	json  bool
	force bool
}

const tailLong = `Subscribe to TOPIC and print each message as it arrives: its ID, attempt,
key, metadata and payload (as text, or base64 when it is not UTF-8), one
line per message; with --json, one JSON object per line (the form publish
--json reads back).

By default tail creates a throw-away group, "tail-" and a random suffix,
which receives every message published from then on, and deletes it when
tail ends (after -n messages, on Ctrl-C, or when the reader of its output
goes away, as with "| head -1"), with the messages it still holds. With --group, tail joins an existing group as one more member: it
competes with the group's other members for messages and acks those it
prints, so they are gone from the group.

Unless --force, tail first checks with the broker (where it can tell) that
the topic exists, and with --group that the group exists, so that a typo
creates nothing. Messages are handled one at a time; with -n N, tail acks
exactly N messages and hands any further one back untouched.`

func (a *app) tailCmd() *cobra.Command {
	var o tailOptions
	c := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print the messages of a topic as they arrive",
		Long:  tailLong,
		Example: `  switchyard tail orders
  switchyard tail orders --json -n 1 | jq .payload
  switchyard tail orders --group billing -n 10   # take (and ack) 10 of billing's messages`,
		Args: exactArgs("TOPIC"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			return a.tail(args[0], o)
		}),
	}
	f := c.Flags()
	f.StringVarP(&o.group, "group", "g", "", "join this existing group (acks what it prints) instead of a throw-away group")
	f.IntVarP(&o.n, "number", "n", 0, "stop after this many messages (0: until Ctrl-C)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per message")
	f.BoolVar(&o.force, "force", false, "do not check that the topic (and --group) exist")
	return c
}

// tail runs the tail command.
func (a *app) tail(topic string, o tailOptions) error {
	if err := checkNames(topic, o.group); err != nil {
		return err
	}
	if o.n < 0 {
		return usagef("-n %d: want 0 or more", o.n)
	}
	b, err := a.open()
	if err != nil {
		return err
	}
	defer a.closeBroker(b)
	if !o.force {
		if err := a.checkTailTarget(b, topic, o.group); err != nil {
			return err
		}
	}

	group := o.group
	throwAway := group == ""
	if throwAway {
		group = "tail-" + pubsub.NewID()[:12]
		ctx, cancel := a.call()
		err := b.CreateGroup(ctx, topic, group)
		cancel()
		if err != nil {
			return fmt.Errorf("create throw-away group %s of topic %s: %w", group, topic, err)
		}
	}

	t := &tailer{a: a, o: o, done: make(chan struct{}), ready: make(chan struct{})}
	sub, err := b.Subscribe(context.WithoutCancel(a.ctx), topic, group, t.handle, pubsub.WithConcurrency(1))
	t.sub = sub
	close(t.ready)
	if err == nil {
		if throwAway {
			fmt.Fprintf(a.stderr, "switchyard: tailing topic %s as throw-away group %s (deleted on exit); Ctrl-C to stop\n", topic, group)
		} else {
			fmt.Fprintf(a.stderr, "switchyard: tailing topic %s as a member of group %s (acks what it prints); Ctrl-C to stop\n", topic, group)
		}
		select {
		case <-a.ctx.Done():
		case <-t.done:
		}
		if cerr := sub.Close(); cerr != nil {
			err = fmt.Errorf("stop the subscription: %w", cerr)
		}
	} else {
		err = fmt.Errorf("subscribe to %s as %s: %w", topic, group, err)
	}
	if throwAway {
		if derr := a.deleteThrowAway(b, topic, group); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	if err != nil {
		return err
	}
	if errors.Is(t.writeErr, syscall.EPIPE) {
		return nil // the reader went away (tail T | head -1): a normal end
	}
	return t.writeErr
}

// checkTailTarget returns an error when the broker says that group, when
// given, or else topic does not exist. Every broker tells whether a group
// exists (its dead letters are listed or ErrNotFound), and whether a topic
// exists (ListGroups answers, or ErrNotFound; RabbitMQ answers
// errors.ErrUnsupported for a topic that exists).
func (a *app) checkTailTarget(b broker, topic, group string) error {
	ctx, cancel := a.call()
	defer cancel()
	if group != "" {
		if err := groupExists(ctx, b, topic, group); err != nil {
			return fmt.Errorf("%w (or give --force)", err)
		}
		return nil
	}
	_, err := b.ListGroups(ctx, topic)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return nil
	case errors.Is(err, pubsub.ErrNotFound):
		return fmt.Errorf("topic %s does not exist (give --force to tail it anyway; the broker then creates it)", topic)
	case err != nil:
		return fmt.Errorf("list the groups of %s: %w", topic, err)
	}
	return nil
}

// groupExists returns nil when group of topic exists, asking for one of its
// dead letters (pubsub.DeadLetterAdmin answers ErrNotFound for a group that
// does not exist, on every broker).
func groupExists(ctx context.Context, b broker, topic, group string) error {
	if _, err := b.ListDeadLetters(ctx, topic, group, 1); err != nil {
		return notFound(err, topic, group)
	}
	return nil
}

// deleteThrowAway deletes tail's own group, even after Ctrl-C.
func (a *app) deleteThrowAway(b broker, topic, group string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), a.timeout)
	defer cancel()
	if err := b.DeleteGroup(ctx, topic, group); err != nil {
		return fmt.Errorf("delete throw-away group %s (delete it with: switchyard groups delete %s %s): %w", group, topic, group, err)
	}
	fmt.Fprintf(a.stderr, "switchyard: deleted throw-away group %s\n", group)
	return nil
}

// tailer is tail's handler. Handlers run one at a time (concurrency 1), so
// its counters need no lock.
type tailer struct {
	a *app
	o tailOptions

	printed  int
	writeErr error
	stopOnce sync.Once
	done     chan struct{} // closed when tail has printed enough or cannot print

	ready chan struct{}        // closed once sub is set
	sub   *pubsub.Subscription // nil if Subscribe failed
}

// handle prints m and acks it; once tail is done, it hands further
// messages back untouched.
func (t *tailer) handle(_ context.Context, m *pubsub.Message) error {
	if t.writeErr != nil || (t.o.n > 0 && t.printed >= t.o.n) {
		return t.handBack()
	}
	var err error
	if t.o.json {
		var line []byte
		line, err = json.Marshal(toJSON(m))
		if err == nil {
			_, err = t.a.stdout.Write(append(line, '\n'))
		}
	} else {
		_, err = fmt.Fprintln(t.a.stdout, messageLine(m))
	}
	if err != nil {
		t.writeErr = fmt.Errorf("print message %s: %w", m.ID, err)
		t.stop()
		return t.handBack()
	}
	t.printed++
	if t.o.n > 0 && t.printed == t.o.n {
		t.stop()
	}
	return nil
}

func (t *tailer) stop() { t.stopOnce.Do(func() { close(t.done) }) }

// handBack waits until the subscription stops, then returns ErrClosed, so
// that the delivery loop hands the message back untouched (not as a failed
// attempt).
func (t *tailer) handBack() error {
	<-t.ready
	if t.sub != nil {
		<-t.sub.Stopping()
	}
	return pubsub.ErrClosed
}
