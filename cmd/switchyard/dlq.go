package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/switchyard-go/switchyard/pubsub"
)

const dlqLong = `Each consumer group of a topic has dead letters of its own: the messages its
handlers gave up on (after their maximum attempts, or at once for a permanent
error), each with the reason, the time, and how many attempts were made.
They stay until replayed to that group, and only that group, or purged.`

func (a *app) dlqCmd() *cobra.Command {
	c := groupCmd("dlq", "List, show, replay and purge a group's dead letters",
		a.dlqListCmd(), a.dlqShowCmd(), a.dlqReplayCmd(), a.dlqPurgeCmd())
	c.Long = dlqLong
	return c
}

// deadLetter is a dead letter as dlq list and dlq show print it.
type deadLetter struct {
	ID            string            `json:"id"`
	Time          string            `json:"time,omitempty"` // RFC 3339, as the broker stored it
	Attempts      int               `json:"attempts"`
	Reason        string            `json:"reason"`
	Size          int               `json:"size"` // payload bytes
	Key           string            `json:"key,omitempty"`
	Topic         string            `json:"topic,omitempty"` // the original topic
	Group         string            `json:"group,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"` // the message's own, without the dead-letter keys
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 *string           `json:"payload_base64,omitempty"`
}

// newDeadLetter reads m's dead-letter metadata; full adds the metadata and
// payload.
func newDeadLetter(m *pubsub.Message, full bool) deadLetter {
	d := deadLetter{
		ID:     m.ID,
		Time:   m.Metadata[pubsub.MetadataDeadLetterTime],
		Reason: m.Metadata[pubsub.MetadataDeadLetterReason],
		Size:   len(m.Payload),
		Key:    m.Key,
	}
	d.Attempts, _ = strconv.Atoi(m.Metadata[pubsub.MetadataAttempts])
	if !full {
		return d
	}
	d.Topic = m.Metadata[pubsub.MetadataOriginalTopic]
	d.Group = m.Metadata[pubsub.MetadataGroup]
	d.Metadata = map[string]string{}
	for k, v := range m.Metadata {
		if !strings.HasPrefix(k, "switchyard-") {
			d.Metadata[k] = v
		}
	}
	setPayload(&d.Payload, &d.PayloadBase64, m.Payload)
	return d
}

// when renders a dead-letter time for a table: UTC to the second.
func when(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339Nano, rfc3339)
	if err != nil {
		return rfc3339
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// shorten cuts s to n runes for a table cell, on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// listDeadLetters lists up to limit dead letters of group (0: all).
func (a *app) listDeadLetters(b broker, topic, group string, limit int) ([]*pubsub.Message, error) {
	ctx, cancel := a.call()
	defer cancel()
	dls, err := b.ListDeadLetters(ctx, topic, group, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", notFound(err, topic, group))
	}
	return dls, nil
}

func (a *app) dlqListCmd() *cobra.Command {
	var asJSON bool
	var limit int
	c := &cobra.Command{
		Use:   "list TOPIC GROUP",
		Short: "List a group's dead letters, oldest first, without removing them",
		Long: `List the dead letters of GROUP of TOPIC, oldest first, without removing them:
ID, when it was dead-lettered (UTC), attempts, payload size in bytes, and the
reason (cut to fit; dlq show and --json give it whole). --json prints one
JSON object per dead letter.`,
		Args: exactArgs("TOPIC", "GROUP"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			topic, group := args[0], args[1]
			if err := checkNames(topic, group); err != nil {
				return err
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			b, err := a.open()
			if err != nil {
				return err
			}
			defer a.closeBroker(b)
			dls, err := a.listDeadLetters(b, topic, group, limit)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				for _, m := range dls {
					if err := enc.Encode(newDeadLetter(m, false)); err != nil {
						return err
					}
				}
				return nil
			}
			if len(dls) == 0 {
				fmt.Fprintf(a.stdout, "group %s of topic %s has no dead letters\n", group, topic)
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tWHEN\tATTEMPTS\tSIZE\tREASON")
			for _, m := range dls {
				d := newDeadLetter(m, false)
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", d.ID, when(d.Time), d.Attempts, d.Size, shorten(d.Reason, 60))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if limit > 0 && len(dls) == limit {
				fmt.Fprintf(a.stderr, "switchyard: showing the first %d; --limit 0 lists all\n", limit)
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per dead letter")
	c.Flags().IntVar(&limit, "limit", 1000, "list at most this many (0: all)")
	return c
}

func (a *app) dlqShowCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show TOPIC GROUP ID",
		Short: "Show one dead letter whole: reason, metadata and payload",
		Args:  exactArgs("TOPIC", "GROUP", "ID"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			topic, group, id := args[0], args[1], args[2]
			if err := checkNames(topic, group); err != nil {
				return err
			}
			b, err := a.open()
			if err != nil {
				return err
			}
			defer a.closeBroker(b)
			dls, err := a.listDeadLetters(b, topic, group, 0)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(dls, func(m *pubsub.Message) bool { return m.ID == id })
			if i < 0 {
				return fmt.Errorf("no dead letter %s in group %s of topic %s", id, group, topic)
			}
			d := newDeadLetter(dls[i], true)
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 1, ' ', 0)
			fmt.Fprintf(tw, "ID:\t%s\n", d.ID)
			fmt.Fprintf(tw, "Topic:\t%s\n", d.Topic)
			fmt.Fprintf(tw, "Group:\t%s\n", d.Group)
			fmt.Fprintf(tw, "When:\t%s\n", d.Time)
			fmt.Fprintf(tw, "Attempts:\t%d\n", d.Attempts)
			fmt.Fprintf(tw, "Reason:\t%s\n", d.Reason)
			if d.Key != "" {
				fmt.Fprintf(tw, "Key:\t%s\n", field(d.Key))
			}
			fmt.Fprintf(tw, "Size:\t%d bytes\n", d.Size)
			for _, k := range slices.Sorted(maps.Keys(d.Metadata)) {
				fmt.Fprintf(tw, "Metadata:\t%s=%s\n", field(k), field(d.Metadata[k]))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if d.Payload != nil {
				fmt.Fprintf(a.stdout, "Payload (text):\n%s\n", *d.Payload)
			} else {
				fmt.Fprintf(a.stdout, "Payload (base64):\n%s\n", *d.PayloadBase64)
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the dead letter as one JSON object")
	return c
}

// dlqAction is replay or purge.
type dlqAction struct {
	name, verb, past string
	do               func(b broker, topic, group string, ids []string) (int, error)
}

func (a *app) dlqReplayCmd() *cobra.Command {
	return a.dlqActionCmd(dlqAction{
		name: "replay", verb: "Replay", past: "replayed",
		do: func(b broker, topic, group string, ids []string) (int, error) {
			ctx, cancel := a.call()
			defer cancel()
			return b.ReplayDeadLetters(ctx, topic, group, ids...)
		},
	}, `Send dead letters of GROUP of TOPIC back to that group, and to no other
group of the topic: the given IDs, or with --all every dead letter there is
when the command starts. Their next delivery has attempt 1.`)
}

func (a *app) dlqPurgeCmd() *cobra.Command {
	return a.dlqActionCmd(dlqAction{
		name: "purge", verb: "Delete", past: "purged",
		do: func(b broker, topic, group string, ids []string) (int, error) {
			ctx, cancel := a.call()
			defer cancel()
			return b.PurgeDeadLetters(ctx, topic, group, ids...)
		},
	}, `Delete dead letters of GROUP of TOPIC for good: the given IDs, or with --all
every dead letter there is when the command starts.`)
}

// replayChunk is how many IDs one replay or purge call carries, so that a
// progress bar can move.
const replayChunk = 100

// dlqActionCmd builds dlq replay or dlq purge.
func (a *app) dlqActionCmd(act dlqAction, long string) *cobra.Command {
	var all, yes bool
	c := &cobra.Command{
		Use:   act.name + " TOPIC GROUP [ID...]",
		Short: act.verb + " a group's dead letters (given IDs, or --all)",
		Long: long + `

On a terminal it asks for confirmation unless --yes, and shows a progress bar
when there are more dead letters than the screen has lines. It prints how
many it ` + act.past + `.`,
		Args: minArgs("TOPIC", "GROUP"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			topic, group, ids := args[0], args[1], args[2:]
			if err := checkNames(topic, group); err != nil {
				return err
			}
			switch {
			case len(ids) == 0 && !all:
				return usagef("give the IDs of the dead letters to %s, or --all", act.name)
			case len(ids) > 0 && all:
				return usagef("give IDs or --all, not both")
			}
			b, err := a.open()
			if err != nil {
				return err
			}
			defer a.closeBroker(b)
			dls, err := a.listDeadLetters(b, topic, group, 0)
			if err != nil {
				return err
			}
			targets := a.dlqTargets(dls, ids)
			if len(targets) == 0 {
				if all {
					fmt.Fprintf(a.stdout, "group %s of topic %s has no dead letters\n", group, topic)
					return nil
				}
				return fmt.Errorf("none of the %d IDs given is a dead letter of group %s of topic %s", len(ids), group, topic)
			}
			ok, err := a.confirm(yes, fmt.Sprintf("%s %d dead letters of group %s of topic %s?", act.verb, len(targets), group, topic))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("not confirmed; nothing %s", act.past)
			}
			n, err := a.dlqInChunks(act, b, topic, group, targets)
			fmt.Fprintf(a.stdout, "%s %d dead letters of group %s of topic %s\n", act.past, n, group, topic)
			if err != nil {
				return err
			}
			if n < len(targets) {
				fmt.Fprintf(a.stderr, "switchyard: %d of them were gone already (replayed or purged meanwhile)\n", len(targets)-n)
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&all, "all", false, "every dead letter of the group")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return c
}

// dlqTargets returns the IDs to act on: every dead letter's when ids is
// empty, else those of ids that are dead letters (warning about the
// others), each once.
func (a *app) dlqTargets(dls []*pubsub.Message, ids []string) []string {
	present := map[string]bool{}
	var all []string
	for _, m := range dls {
		if !present[m.ID] {
			present[m.ID] = true
			all = append(all, m.ID)
		}
	}
	if len(ids) == 0 {
		return all
	}
	var targets, missing []string
	seen := map[string]bool{}
	for _, id := range ids {
		switch {
		case seen[id]:
		case present[id]:
			targets = append(targets, id)
		default:
			missing = append(missing, id)
		}
		seen[id] = true
	}
	if len(missing) > 0 {
		fmt.Fprintf(a.stderr, "switchyard: not dead letters of this group, skipped: %s\n", strings.Join(missing, " "))
	}
	return targets
}

// dlqInChunks acts on ids in chunks of replayChunk, with a progress bar
// for more than a screenful, and returns how many dead letters it moved or
// deleted.
func (a *app) dlqInChunks(act dlqAction, b broker, topic, group string, ids []string) (int, error) {
	var bar interface{ Add(int) error }
	if a.showProgress(len(ids) > a.screenRows()) {
		bar = a.newBar(int64(len(ids)), act.past, progressbar.OptionShowCount())
	}
	total := 0
	for chunk := range slices.Chunk(ids, replayChunk) {
		n, err := act.do(b, topic, group, chunk)
		total += n
		if err != nil {
			if a.ctx.Err() != nil {
				return total, a.ctx.Err()
			}
			return total, fmt.Errorf("%s: %w", act.name, notFound(err, topic, group))
		}
		if bar != nil {
			_ = bar.Add(len(chunk))
		}
	}
	return total, nil
}
