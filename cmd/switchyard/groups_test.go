package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestGroups: create, list with backlog and dead letters (where the broker
// tells; exactly what the public API answers), delete.
func TestGroups(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		topic := newTopic()
		tg.cleanup(t, topic, "alpha", "beta")
		requireOK(t, tg.run(t, "", "groups", "create", topic, "beta"))
		requireOK(t, tg.run(t, "", "groups", "create", topic, "alpha"))
		b := tg.openBroker(t)
		requireOK(t, tg.run(t, "", "publish", topic, "x", "y", "z"))

		_, apiErr := b.ListGroups(context.Background(), topic)
		r := tg.run(t, "", "groups", "list", topic, "--json")
		if errors.Is(apiErr, errors.ErrUnsupported) {
			assert.Equal(t, 1, r.code)
			assert.Equal(t, "switchyard: this broker cannot list the groups of a topic (see switchyard groups list --help)\n", r.stderr)
		} else {
			requireOK(t, r)
			require.NoError(t, apiErr)
			want, err := b.ListGroups(context.Background(), topic)
			require.NoError(t, err)
			var got []pubsub.GroupInfo
			for _, l := range lines(r.stdout) {
				var g groupJSON
				require.NoError(t, json.Unmarshal([]byte(l), &g))
				info := pubsub.GroupInfo{Name: g.Name, Backlog: -1, DeadLetters: -1}
				if g.Backlog != nil {
					info.Backlog = *g.Backlog
				}
				if g.DeadLetters != nil {
					info.DeadLetters = *g.DeadLetters
				}
				got = append(got, info)
			}
			assert.Equal(t, want, got)
			require.Len(t, got, 2)
			assert.Equal(t, []string{"alpha", "beta"}, []string{got[0].Name, got[1].Name})
			if tg.name == "mem" {
				assert.Equal(t, []pubsub.GroupInfo{{Name: "alpha", Backlog: 3, DeadLetters: 0}, {Name: "beta", Backlog: 3, DeadLetters: 0}}, got)
			}
		}

		r = tg.run(t, "", "groups", "delete", topic, "alpha")
		requireOK(t, r)
		assert.Equal(t, fmt.Sprintf("deleted group alpha of topic %s\n", topic), r.stdout)
		assert.ErrorIs(t, b.DeleteGroup(context.Background(), topic, "alpha"), pubsub.ErrNotFound)
		r = tg.run(t, "", "groups", "delete", topic, "alpha")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, fmt.Sprintf("switchyard: group alpha of topic %s does not exist (switchyard groups list %s shows the groups)\n", topic, topic), r.stderr)
	})
}

// TestGroupsListTable: the table for people, with a dead letter counted.
func TestGroupsListTable(t *testing.T) {
	tg := memTarget()
	topic := newTopic()
	b := tg.openBroker(t)
	requireOK(t, tg.run(t, "", "groups", "create", topic, "waiting"))
	r := tg.run(t, "", "groups", "list", topic)
	requireOK(t, r)
	assert.Equal(t, []string{"GROUP    BACKLOG  DEAD LETTERS", "waiting  0        0"}, lines(r.stdout))

	failing, dead := failingGroup(t, b, topic, "failing-group")
	requireOK(t, tg.run(t, "", "publish", topic, "a", "b"))
	recv(t, dead)
	recv(t, dead)
	require.NoError(t, failing.Close())
	r = tg.run(t, "", "groups", "list", topic)
	requireOK(t, r)
	assert.Equal(t, []string{
		"GROUP          BACKLOG  DEAD LETTERS",
		"failing-group  0        2",
		"waiting        2        0",
	}, lines(r.stdout))

	empty := newTopic()
	require.NoError(t, b.Publish(context.Background(), empty, pubsub.NewMessage(nil)))
	r = tg.run(t, "", "groups", "list", empty)
	requireOK(t, r)
	assert.Equal(t, fmt.Sprintf("topic %s has no groups\n", empty), r.stdout)
}
