package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

const groupsListLong = `List the consumer groups of TOPIC with, where the broker can tell, each
group's backlog (messages it holds that no handler has finished: waiting, in
flight, and waiting out a retry) and its number of dead letters; "-" (null
with --json) where it cannot. --json prints one JSON object per group.

What each broker can tell (through pubsub.GroupLister):
  mem://         every group, with exact backlog and dead-letter counts (of
                 this one process: see switchyard --help)
  nats://        every group (the consumers of the topic's stream), with its
                 backlog (its consumers' pending and unacknowledged messages,
                 retries waiting included) and dead letters, as the server
                 counts them; a message acked a moment ago may still count
  gcppubsub://   every group (the topic's subscriptions TOPIC+GROUP), by
                 name only: Pub/Sub's API counts no messages, so both counts
                 are "-". Cloud Monitoring has them, a minute or more late:
                 subscription/num_undelivered_messages of TOPIC+GROUP and of
                 TOPIC+GROUP+dl
  amqp://        whether the topic exists, nothing more: AMQP cannot list the
                 queues bound to an exchange, so the command exits 1 saying
                 so. On the broker's host rabbitmqctl can (a group's queue is
                 TOPIC:GROUP, its dead letters TOPIC:GROUP:dead):
                   rabbitmqctl -q list_bindings -p VHOST source_name destination_name
                   rabbitmqctl -q list_queues -p VHOST name messages_ready messages_unacknowledged

A topic the broker does not know exits 1.`

func (a *app) groupsCmd() *cobra.Command {
	return groupCmd("groups", "Create, delete and list the consumer groups of a topic",
		a.groupsCreateCmd(), a.groupsDeleteCmd(), a.groupsListCmd())
}

func (a *app) groupsCreateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "create TOPIC GROUP",
		Short: "Create a consumer group, which keeps the topic's messages from now on",
		Long: `Create GROUP of TOPIC if it does not exist. From then on the group keeps every
message published to the topic, whether or not a member runs (no broker keeps
messages for a group that does not exist yet).`,
		Args: exactArgs("TOPIC", "GROUP"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			topic, group := args[0], args[1]
			if err := checkNames(topic, group); err != nil {
				return err
			}
			b, err := a.open()
			if err != nil {
				return err
			}
			defer a.closeBroker(b)
			ctx, cancel := a.call()
			defer cancel()
			if err := b.CreateGroup(ctx, topic, group); err != nil {
				return fmt.Errorf("create group %s of topic %s: %w", group, topic, err)
			}
			fmt.Fprintf(a.stdout, "created group %s of topic %s\n", group, topic)
			return nil
		}),
	}
}

func (a *app) groupsDeleteCmd() *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "delete TOPIC GROUP",
		Short: "Delete a consumer group with its messages and dead letters",
		Long: `Delete GROUP of TOPIC with the messages it holds, its retry state and its dead
letters. Stop the group's members first: a member still running may create
the group again. On a terminal it asks for confirmation unless --yes.`,
		Args: exactArgs("TOPIC", "GROUP"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			topic, group := args[0], args[1]
			if err := checkNames(topic, group); err != nil {
				return err
			}
			b, err := a.open()
			if err != nil {
				return err
			}
			defer a.closeBroker(b)
			ctx, cancel := a.call()
			defer cancel()
			if err := groupExists(ctx, b, topic, group); err != nil {
				return err
			}
			ok, err := a.confirm(yes, fmt.Sprintf("Delete group %s of topic %s with its messages and dead letters?", group, topic))
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("not confirmed; nothing deleted")
			}
			ctx, cancel = a.call()
			defer cancel()
			if err := b.DeleteGroup(ctx, topic, group); err != nil {
				return fmt.Errorf("delete: %w", notFound(err, topic, group))
			}
			fmt.Fprintf(a.stdout, "deleted group %s of topic %s\n", group, topic)
			return nil
		}),
	}
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return c
}

// groupJSON is a group as groups list --json prints it; counts the broker
// cannot tell are null.
type groupJSON struct {
	Name        string `json:"name"`
	Backlog     *int   `json:"backlog"`
	DeadLetters *int   `json:"dead_letters"`
}

// known returns &n, or nil for a count the broker cannot tell.
func known(n int) *int {
	if n < 0 {
		return nil
	}
	return &n
}

// count renders a count for the table.
func count(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func (a *app) groupsListCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list TOPIC",
		Short: "List a topic's groups with their backlog and dead letters where the broker can tell",
		Long:  groupsListLong,
		Args:  exactArgs("TOPIC"),
		RunE: a.runE(func(_ *cobra.Command, args []string) error {
			topic := args[0]
			if err := checkNames(topic, ""); err != nil {
				return err
			}
			b, err := a.open()
			if err != nil {
				return err
			}
			defer a.closeBroker(b)
			ctx, cancel := a.call()
			defer cancel()
			groups, err := b.ListGroups(ctx, topic)
			switch {
			case errors.Is(err, errors.ErrUnsupported):
				return fmt.Errorf("this broker cannot list the groups of a topic (see switchyard groups list --help)")
			case err != nil:
				return fmt.Errorf("list groups: %w", notFound(err, topic, ""))
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				for _, g := range groups {
					if err := enc.Encode(groupJSON{Name: g.Name, Backlog: known(g.Backlog), DeadLetters: known(g.DeadLetters)}); err != nil {
						return err
					}
				}
				return nil
			}
			if len(groups) == 0 {
				fmt.Fprintf(a.stdout, "topic %s has no groups\n", topic)
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tBACKLOG\tDEAD LETTERS")
			for _, g := range groups {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, count(g.Backlog), count(g.DeadLetters))
			}
			return tw.Flush()
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per group")
	return c
}
