package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
)

// failingGroup subscribes group of topic with a handler that dead-letters
// every message at once (reason "boom: PAYLOAD"), and returns a channel of
// the IDs dead-lettered, told by the delivery loop itself.
func failingGroup(t *testing.T, b broker, topic, group string) (*pubsub.Subscription, <-chan string) {
	t.Helper()
	dead := make(chan string, 1000)
	sub, err := b.Subscribe(context.Background(), topic, group, func(_ context.Context, m *pubsub.Message) error {
		return pubsub.Permanent(fmt.Errorf("boom: %s", m.Payload))
	}, pubsub.WithObserver(pubsub.Observer{OnSettle: func(_ context.Context, s pubsub.Settlement) {
		if s.Outcome == pubsub.OutcomeDeadLettered {
			dead <- s.Message.ID
		}
	}}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub, dead
}

// collectingGroup subscribes group of topic with a handler that acks and
// passes each message on.
func collectingGroup(t *testing.T, b broker, topic, group string) <-chan *pubsub.Message {
	t.Helper()
	got := make(chan *pubsub.Message, 1000)
	sub, err := b.Subscribe(context.Background(), topic, group, func(_ context.Context, m *pubsub.Message) error {
		got <- m
		return nil
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return got
}

// TestDeadLetters: a failing group's dead letters are listed (table and
// JSON), shown, replayed to that group only, and purged.
func TestDeadLetters(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		ctx := context.Background()
		topic := newTopic()
		tg.cleanup(t, topic, "fail", "other")
		requireOK(t, tg.run(t, "", "groups", "create", topic, "fail"))
		requireOK(t, tg.run(t, "", "groups", "create", topic, "other"))
		b := tg.openBroker(t)
		failing, dead := failingGroup(t, b, topic, "fail")
		other := collectingGroup(t, b, topic, "other")

		r := tg.run(t, "", "publish", topic, "m1", "m2", "m3")
		requireOK(t, r)
		ids := lines(r.stdout)
		require.Len(t, ids, 3)
		var deadIDs []string
		for range 3 {
			deadIDs = append(deadIDs, recv(t, dead))
			assert.Contains(t, ids, recv(t, other).ID)
		}
		assert.ElementsMatch(t, ids, deadIDs)
		require.NoError(t, failing.Close())
		payloadOf := map[string]string{ids[0]: "m1", ids[1]: "m2", ids[2]: "m3"}

		// list --json
		r = tg.run(t, "", "dlq", "list", topic, "fail", "--json")
		requireOK(t, r)
		var listed []deadLetter
		for _, l := range lines(r.stdout) {
			var d deadLetter
			require.NoError(t, json.Unmarshal([]byte(l), &d), l)
			listed = append(listed, d)
		}
		require.Len(t, listed, 3)
		var listedIDs []string
		for _, d := range listed {
			listedIDs = append(listedIDs, d.ID)
			assert.Equal(t, 1, d.Attempts)
			assert.Equal(t, "boom: "+payloadOf[d.ID], d.Reason)
			assert.Equal(t, 2, d.Size)
			when, err := time.Parse(time.RFC3339Nano, d.Time)
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now(), when, time.Minute)
		}
		assert.ElementsMatch(t, ids, listedIDs)

		// list as a table
		r = tg.run(t, "", "dlq", "list", topic, "fail")
		requireOK(t, r)
		rows := lines(r.stdout)
		require.Len(t, rows, 4)
		assert.Equal(t, []string{"ID", "WHEN", "ATTEMPTS", "SIZE", "REASON"}, strings.Fields(rows[0]))
		for i, row := range rows[1:] {
			f := strings.Fields(row)
			assert.Equal(t, listed[i].ID, f[0])
			assert.Equal(t, []string{"1", "2", "boom:", payloadOf[listed[i].ID]}, f[3:])
		}

		// show
		first := listed[0]
		r = tg.run(t, "", "dlq", "show", topic, "fail", first.ID)
		requireOK(t, r)
		assert.Contains(t, r.stdout, "Reason:   boom: "+payloadOf[first.ID]+"\n")
		assert.Contains(t, r.stdout, "Group:    fail\n")
		assert.Contains(t, r.stdout, "Topic:    "+topic+"\n")
		assert.True(t, strings.HasSuffix(r.stdout, "Payload (text):\n"+payloadOf[first.ID]+"\n"), r.stdout)
		r = tg.run(t, "", "dlq", "show", topic, "fail", "no-such-id")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, fmt.Sprintf("switchyard: no dead letter no-such-id in group fail of topic %s\n", topic), r.stderr)

		// replay one, to its group only
		replayed := collectingGroup(t, b, topic, "fail")
		r = tg.run(t, "", "dlq", "replay", topic, "fail", first.ID, "--yes")
		requireOK(t, r)
		assert.Equal(t, fmt.Sprintf("replayed 1 dead letters of group fail of topic %s\n", topic), r.stdout)
		m := recv(t, replayed)
		assert.Equal(t, first.ID, m.ID)
		assert.Equal(t, 1, m.Attempt)
		assert.Equal(t, payloadOf[first.ID], string(m.Payload))
		for k := range m.Metadata {
			assert.False(t, strings.HasPrefix(k, "switchyard-"), "replayed message carries dead-letter metadata %s", k)
		}
		quiet(t, replayed, "second replayed delivery")
		quiet(t, other, "delivery to another group")

		r = tg.run(t, "", "dlq", "list", topic, "fail", "--json")
		requireOK(t, r)
		assert.Len(t, lines(r.stdout), 2)

		// purge the rest
		r = tg.run(t, "", "dlq", "purge", topic, "fail", "--all", "--yes")
		requireOK(t, r)
		assert.Equal(t, fmt.Sprintf("purged 2 dead letters of group fail of topic %s\n", topic), r.stdout)
		r = tg.run(t, "", "dlq", "list", topic, "fail")
		requireOK(t, r)
		assert.Equal(t, fmt.Sprintf("group fail of topic %s has no dead letters\n", topic), r.stdout)
		r = tg.run(t, "", "dlq", "replay", topic, "fail", "--all", "--yes")
		requireOK(t, r)
		assert.Equal(t, fmt.Sprintf("group fail of topic %s has no dead letters\n", topic), r.stdout)
		quiet(t, replayed, "delivery of a purged dead letter")

		// unknown group
		r = tg.run(t, "", "dlq", "list", topic, "nosuch")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, fmt.Sprintf("switchyard: list dead letters: group nosuch of topic %s does not exist (switchyard groups list %s shows the groups)\n", topic, topic), r.stderr)

		dls, err := b.ListDeadLetters(ctx, topic, "other", 0)
		require.NoError(t, err)
		assert.Empty(t, dls, "the other group has no dead letters")
	})
}

// TestDeadLetterIDs: replay and purge by ID skip IDs that are not there,
// and fail when none is.
func TestDeadLetterIDs(t *testing.T) {
	tg := memTarget()
	topic := newTopic()
	b := tg.openBroker(t)
	_, dead := failingGroup(t, b, topic, "g")
	r := tg.run(t, "", "publish", topic, "a", "b")
	requireOK(t, r)
	ids := lines(r.stdout)
	recv(t, dead)
	recv(t, dead)

	r = tg.run(t, "", "dlq", "purge", topic, "g", "nope-1", ids[1], "nope-2", ids[1])
	requireOK(t, r)
	assert.Equal(t, fmt.Sprintf("purged 1 dead letters of group g of topic %s\n", topic), r.stdout)
	assert.Equal(t, "switchyard: not dead letters of this group, skipped: nope-1 nope-2\n", r.stderr)

	r = tg.run(t, "", "dlq", "replay", topic, "g", "nope-1")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "switchyard: none of the 1 IDs given is a dead letter of group g of topic "+topic)

	dls, err := b.ListDeadLetters(context.Background(), topic, "g", 0)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	assert.Equal(t, ids[0], dls[0].ID)
}

// TestConfirmation: on a terminal, replay, purge and groups delete ask;
// only "y" or "yes" goes ahead, and --yes does not ask.
func TestConfirmation(t *testing.T) {
	saved := terminalCheck
	terminalCheck = func(f any) bool { _, ok := f.(*strings.Reader); return ok } // stdin is "a terminal"
	t.Cleanup(func() { terminalCheck = saved })

	tg := memTarget()
	topic := newTopic()
	b := tg.openBroker(t)
	failing, dead := failingGroup(t, b, topic, "g")
	requireOK(t, tg.run(t, "", "publish", topic, "a", "b"))
	recv(t, dead)
	recv(t, dead)
	require.NoError(t, failing.Close())

	question := fmt.Sprintf("Delete 2 dead letters of group g of topic %s? [y/N] ", topic)
	for _, answer := range []string{"n\n", "\n", "", "nope\n"} {
		r := tg.run(t, answer, "dlq", "purge", topic, "g", "--all")
		assert.Equal(t, 1, r.code, "answer %q", answer)
		assert.True(t, strings.HasPrefix(r.stderr, question), r.stderr)
		assert.Contains(t, r.stderr, "switchyard: not confirmed; nothing purged\n")
	}
	dls, err := b.ListDeadLetters(context.Background(), topic, "g", 0)
	require.NoError(t, err)
	require.Len(t, dls, 2, "nothing purged")

	r := tg.run(t, "yes\n", "dlq", "purge", topic, "g", dls[0].ID)
	requireOK(t, r)
	assert.Equal(t, fmt.Sprintf("Delete 1 dead letters of group g of topic %s? [y/N] ", topic), r.stderr)
	r = tg.run(t, "", "dlq", "purge", topic, "g", "--all", "--yes")
	requireOK(t, r)
	assert.Empty(t, r.stderr, "--yes does not ask")
	assert.Equal(t, fmt.Sprintf("purged 1 dead letters of group g of topic %s\n", topic), r.stdout)

	r = tg.run(t, "n\n", "groups", "delete", topic, "g")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "not confirmed; nothing deleted")
	r = tg.run(t, "y\n", "groups", "delete", topic, "g")
	requireOK(t, r)
	assert.Equal(t, fmt.Sprintf("deleted group g of topic %s\n", topic), r.stdout)
	assert.ErrorIs(t, b.DeleteGroup(context.Background(), topic, "g"), pubsub.ErrNotFound)
}

// TestReplayManyWithProgress: replay works in chunks, with a progress bar,
// and every dead letter comes back exactly once.
func TestReplayManyWithProgress(t *testing.T) {
	const n = 250
	tg := memTarget()
	topic := newTopic()
	b := tg.openBroker(t)
	failing, dead := failingGroup(t, b, topic, "g")
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("m%d", i)
	}
	r := tg.run(t, strings.Join(msgs, "\n"), "publish", topic)
	requireOK(t, r)
	ids := lines(r.stdout)
	require.Len(t, ids, n)
	for range n {
		recv(t, dead)
	}
	require.NoError(t, failing.Close())

	back := collectingGroup(t, b, topic, "g")
	r = tg.run(t, "", "dlq", "replay", topic, "g", "--all", "--progress", "always")
	requireOK(t, r)
	assert.Equal(t, fmt.Sprintf("replayed %d dead letters of group g of topic %s\n", n, topic), r.stdout)
	assert.Contains(t, r.stderr, fmt.Sprintf("(%d/%d)", n, n), "the progress bar reached the end")
	var got []string
	for range n {
		got = append(got, recv(t, back).ID)
	}
	quiet(t, back, "duplicate replay")
	slices.Sort(got)
	slices.Sort(ids)
	assert.Equal(t, ids, got)
}
