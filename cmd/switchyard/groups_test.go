package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// TestGroups: create, list (what each broker tells: mem and NATS both
// counts, Pub/Sub names only, RabbitMQ whether the topic exists), delete.
func TestGroups(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		topic := newTopic()
		tg.cleanup(t, topic, "alpha", "beta")
		r := tg.run(t, "", "groups", "list", topic)
		assert.Equal(t, 1, r.code)
		assert.Equal(t, fmt.Sprintf("switchyard: list groups: topic %s does not exist\n", topic), r.stderr)

		requireOK(t, tg.run(t, "", "groups", "create", topic, "beta"))
		requireOK(t, tg.run(t, "", "groups", "create", topic, "alpha"))
		b := tg.openBroker(t)
		requireOK(t, tg.run(t, "", "publish", topic, "x", "y", "z"))

		r = tg.run(t, "", "groups", "list", topic, "--json")
		table := tg.run(t, "", "groups", "list", topic)
		switch tg.name {
		case "amqp":
			for _, r := range []result{r, table} {
				assert.Equal(t, 1, r.code)
				assert.Empty(t, r.stdout)
				assert.Equal(t, "switchyard: this broker cannot list the groups of a topic (see switchyard groups list --help)\n", r.stderr)
			}
		case "gcppubsub":
			requireOK(t, r)
			assert.Equal(t, `{"name":"alpha","backlog":null,"dead_letters":null}`+"\n"+`{"name":"beta","backlog":null,"dead_letters":null}`+"\n", r.stdout)
			requireOK(t, table)
			assert.Equal(t, []string{"GROUP  BACKLOG  DEAD LETTERS", "alpha  -        -", "beta   -        -"}, lines(table.stdout))
		default: // mem, nats
			requireOK(t, r)
			assert.Equal(t, `{"name":"alpha","backlog":3,"dead_letters":0}`+"\n"+`{"name":"beta","backlog":3,"dead_letters":0}`+"\n", r.stdout)
			requireOK(t, table)
			assert.Equal(t, []string{"GROUP  BACKLOG  DEAD LETTERS", "alpha  3        0", "beta   3        0"}, lines(table.stdout))
		}

		r = tg.run(t, "", "groups", "delete", topic, "alpha")
		requireOK(t, r)
		assert.Equal(t, fmt.Sprintf("deleted group alpha of topic %s\n", topic), r.stdout)
		assert.ErrorIs(t, b.DeleteGroup(context.Background(), topic, "alpha"), pubsub.ErrNotFound)
		r = tg.run(t, "", "groups", "delete", topic, "alpha")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, fmt.Sprintf("switchyard: group alpha of topic %s does not exist (switchyard groups list %s shows the groups)\n", topic, topic), r.stderr)
		if tg.name != "amqp" {
			r = tg.run(t, "", "groups", "list", topic, "--json")
			requireOK(t, r)
			assert.Equal(t, []string{"beta"}, jsonNames(t, r.stdout))
		}
	})
}

// jsonNames returns the names of the groups groups list --json printed.
func jsonNames(t *testing.T, out string) []string {
	t.Helper()
	var names []string
	for _, l := range lines(out) {
		var g groupJSON
		require.NoError(t, json.Unmarshal([]byte(l), &g))
		names = append(names, g.Name)
	}
	return names
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
