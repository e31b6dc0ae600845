//go:build reliability

package killed

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/pubsub"
	"github.com/switchyard-go/switchyard/transport"
)

// scenario is one broker's run of the case.
type scenario struct {
	name     string   // the broker, for the figures
	url      string   // transport.Open URL for the parent and the members
	env      []string // added to the members' environment
	messages int      // messages published
	kills    int      // members SIGKILLed, one per trap
	members  int      // members running at once
	// counted: the transport counts a run cut off by a crash (the broker's
	// delivery count), so the message comes back with Attempt one higher;
	// otherwise (an emulator that counts nothing) Attempt stays 1.
	counted bool
	// prefetch is how many messages a member holds at most, handlers
	// included (the transport's documented default), where counted: each
	// may come back counted from a killed member without a handler having
	// run it.
	prefetch int
	timeout  time.Duration // for the whole run, from the first publish
}

// kill is one SIGKILL and what it cut off.
type kill struct {
	victim   *member
	trap     string
	at       time.Time
	inflight map[string]int // started in the victim and not completed: ID → Attempt
}

// run is the record of one scenario, built by the parent from the members'
// records.
type run struct {
	sc        scenario
	t         *testing.T
	members   []*member
	starts    map[string][]event // per message ID, in the order read
	dones     map[string][]event
	open      map[*member]map[string]int // started, not completed
	traps     map[string]bool            // trap ID → used for a kill
	kills     []*kill
	killOf    map[*member]*kill
	ended     int // members whose pipe ended
	confirmed map[string]bool
	pubDone   bool
	together  []string // a message handled by two live members at once
	torn      int
	stopping  bool          // the live members were told to stop
	done      int           // confirmed messages completed at least once
	lag       time.Duration // longest wait of a record between its writing and its handling here
	began     time.Time     // the first publish
}

// runScenario runs sc: members, publishing, kills, then the checks and the
// figures.
func runScenario(t *testing.T, sc scenario, topic, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout+time.Minute)
	defer cancel()
	parent, err := transport.Open(ctx, sc.url, pubsub.WithLogger(nil))
	require.NoError(t, err)
	t.Cleanup(func() { _ = parent.Close() })
	creator, ok := parent.(pubsub.GroupCreator)
	require.True(t, ok, "the broker creates groups")
	require.NoError(t, creator.CreateGroup(ctx, topic, group))
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if err := parent.(pubsub.GroupDeleter).DeleteGroup(dctx, topic, group); err != nil {
			t.Errorf("cleanup: delete group: %v", err)
		}
	})

	r := &run{
		sc: sc, t: t,
		starts: map[string][]event{}, dones: map[string][]event{},
		open: map[*member]map[string]int{}, traps: map[string]bool{},
		killOf: map[*member]*kill{}, confirmed: map[string]bool{},
	}
	events := make(chan event, 4*sc.messages+1024)
	env := append([]string{memberURLEnv + "=" + sc.url, memberTopicEnv + "=" + topic, memberGroupEnv + "=" + group}, sc.env...)
	spawn := func() {
		m := startMember(t, len(r.members)+1, env, events)
		r.members = append(r.members, m)
		r.open[m] = map[string]int{}
	}
	for range sc.members {
		spawn()
	}
	// Wait until the first members subscribed, so that the kills hit a
	// group under load.
	ready := 0
	readyBy := time.After(time.Minute)
	for ready < sc.members {
		select {
		case ev := <-events:
			require.Equal(t, byte('R'), ev.kind, "%s: first record %+v (stderr: %s)", ev.m, ev, ev.m.stderr.String())
			ready++
		case <-readyBy:
			t.Fatalf("%d of %d members subscribed within a minute", ready, sc.members)
		}
	}

	msgs, trapIDs := messages(sc.messages, sc.kills)
	for _, id := range trapIDs {
		r.traps[id] = false
	}
	published := make(chan []string, len(msgs)/publishBatch+1)
	pubErr := make(chan error, 1)
	start := time.Now()
	r.began = start
	go func() { pubErr <- publish(ctx, parent, topic, msgs, published) }()

	deadline := time.After(sc.timeout)
	for !r.finished() {
		select {
		case ids := <-published:
			r.confirm(ids)
		case err := <-pubErr:
			require.NoError(t, err, "publish")
			r.pubDone = true
			for len(published) > 0 { // sent before pubErr
				r.confirm(<-published)
			}
		case ev := <-events:
			if r.handle(ev) {
				spawn()
			}
		case <-deadline:
			r.report(time.Since(start))
			t.Fatalf("not finished within %v: %d of %d confirmed messages completed, %d kills of %d, %d killed members' pipes not ended",
				sc.timeout, r.completed(), len(r.confirmed), len(r.kills), sc.kills, len(r.kills)-r.endedKilled())
		}
	}
	elapsed := time.Since(start)

	// Stop the live members gracefully, reading their last records.
	r.stopping = true
	stopErr := make(chan error, len(r.members))
	stopping := 0
	for _, m := range r.members {
		if !m.killed {
			stopping++
			go func() { stopErr <- m.stop(time.Minute) }()
		}
	}
	for r.ended < len(r.members) {
		select {
		case ev := <-events:
			r.handle(ev)
		case <-time.After(2 * time.Minute):
			t.Fatalf("members' pipes not ended two minutes after Q: %d of %d", r.ended, len(r.members))
		}
	}
	for range stopping {
		assert.NoError(t, <-stopErr)
	}
	r.check()
	r.report(elapsed)
}

// publishBatch is how many messages each Publish call carries.
const publishBatch = 100

// messages returns n messages with IDs m00000..., kills of them traps,
// spread evenly from the first tenth to the last, and the traps' IDs.
func messages(n, kills int) ([]*pubsub.Message, []string) {
	msgs := make([]*pubsub.Message, n)
	trap := map[int]bool{}
	for i := range kills {
		trap[n/10+i*(n*8/10)/max(kills-1, 1)] = true
	}
	var trapIDs []string
	for i := range msgs {
		m := pubsub.NewMessage([]byte("work"))
		m.ID = fmt.Sprintf("m%05d", i)
		if trap[i] {
			m.Payload = []byte(trapPayload)
			trapIDs = append(trapIDs, m.ID)
		}
		msgs[i] = m
	}
	return msgs, trapIDs
}

// publish publishes msgs in batches, sending the IDs of each confirmed
// batch (Publish returned nil) to confirmed.
func publish(ctx context.Context, p pubsub.Publisher, topic string, msgs []*pubsub.Message, confirmed chan<- []string) error {
	for i := 0; i < len(msgs); i += publishBatch {
		batch := msgs[i:min(i+publishBatch, len(msgs))]
		if err := p.Publish(ctx, topic, batch...); err != nil {
			return fmt.Errorf("batch at %d: %w", i, err)
		}
		ids := make([]string, len(batch))
		for j, m := range batch {
			ids[j] = m.ID
		}
		confirmed <- ids
	}
	return nil
}

// confirm records the IDs of a confirmed batch.
func (r *run) confirm(ids []string) {
	for _, id := range ids {
		r.confirmed[id] = true
		if len(r.dones[id]) > 0 {
			r.done++
		}
	}
}

// handle records ev and acts on it; it reports whether it killed a member
// (the caller starts a replacement).
func (r *run) handle(ev event) bool {
	t := r.t
	if ev.err != nil {
		t.Errorf("%s: %v", ev.m, ev.err)
		return false
	}
	r.lag = max(r.lag, time.Since(ev.at))
	switch ev.kind {
	case 0:
		r.ended++
		ev.m.ended = true
		if ev.torn != "" {
			r.torn++
			t.Logf("%s: dropped an unterminated record %q", ev.m, ev.torn)
		}
		if !ev.m.killed && !r.stopping {
			t.Errorf("%s ended without being killed or stopped; stderr:\n%s", ev.m, ev.m.stderr.String())
		}
		if k := r.killOf[ev.m]; k != nil {
			// Everything the victim wrote before it died has been read.
			k.inflight = r.open[ev.m]
			assert.NoError(t, ev.m.reaped())
		}
	case 'R':
	case 'S':
		r.starts[ev.id] = append(r.starts[ev.id], ev)
		if !ev.m.killed {
			for o, ids := range r.open {
				if _, ok := ids[ev.id]; ok && o != ev.m && !o.killed {
					r.together = append(r.together, fmt.Sprintf("%s in %s and %s", ev.id, o, ev.m))
				}
			}
		}
		r.open[ev.m][ev.id] = ev.attempt
		used, isTrap := r.traps[ev.id]
		switch {
		case ev.m.killed:
			// Read after its kill: it is part of what the kill cut off.
		case isTrap && !used && len(r.kills) < r.sc.kills:
			r.traps[ev.id] = true
			k := &kill{victim: ev.m, trap: ev.id}
			require.NoError(t, ev.m.kill())
			k.at = ev.m.killedAt
			r.kills = append(r.kills, k)
			r.killOf[ev.m] = k
			return true
		case isTrap:
			if err := ev.m.send("R " + ev.id); err != nil {
				t.Errorf("%s: release %s: %v", ev.m, ev.id, err)
			}
		}
	case 'D':
		r.dones[ev.id] = append(r.dones[ev.id], ev)
		if len(r.dones[ev.id]) == 1 && r.confirmed[ev.id] {
			r.done++
		}
		delete(r.open[ev.m], ev.id)
	}
	return false
}

// finished reports whether publishing is done, every confirmed message
// completed, every kill made and every victim's pipe read to its end.
func (r *run) finished() bool {
	if !r.pubDone || len(r.kills) < r.sc.kills || r.endedKilled() < len(r.kills) {
		return false
	}
	return r.done == len(r.confirmed)
}

// completed counts the confirmed messages completed at least once.
func (r *run) completed() int {
	n := 0
	for id := range r.confirmed {
		if len(r.dones[id]) > 0 {
			n++
		}
	}
	return n
}

func (r *run) endedKilled() int {
	n := 0
	for _, k := range r.kills {
		if k.victim.ended {
			n++
		}
	}
	return n
}

// killsBefore counts the kills made before at.
func (r *run) killsBefore(at time.Time) int {
	n := 0
	for _, k := range r.kills {
		if k.at.Before(at) {
			n++
		}
	}
	return n
}

// check asserts the case's properties on the complete record.
func (r *run) check() {
	t := r.t
	assert.Equal(t, r.sc.messages, len(r.confirmed), "confirmed")
	assert.Equal(t, r.sc.kills, len(r.kills), "kills")
	assert.Zero(t, len(r.confirmed)-r.completed(), "lost: confirmed messages never completed")
	assert.Empty(t, r.together, "messages handled by two live members at once")
	assert.Zero(t, r.torn, "torn records")

	// Attempt: no handler fails, so only crashes count, at most one each.
	for id, starts := range r.starts {
		for _, s := range starts {
			if r.sc.counted {
				limit := 1 + r.killsBefore(s.at)
				assert.True(t, s.attempt >= 1 && s.attempt <= limit,
					"%s started in %s with Attempt %d, want 1..%d (1 plus the kills before)", id, s.m, s.attempt, limit)
			} else {
				assert.Equal(t, 1, s.attempt, "%s started in %s: the emulator counts no delivery", id, s.m)
			}
		}
	}

	// Messages fetched ahead by a victim come back counted, though no
	// handler ran them: at most the prefetch of each victim.
	assert.LessOrEqual(t, r.fetchedAhead(), len(r.kills)*r.sc.prefetch,
		"messages whose first handler run had Attempt > 1: at most %d kills × prefetch %d", len(r.kills), r.sc.prefetch)

	// What each victim held is completed later elsewhere, with one more
	// Attempt where the transport counts the crash.
	for i, k := range r.kills {
		require.NotNil(t, k.inflight, "kill %d: victim's pipe read to its end", i+1)
		assert.Contains(t, k.inflight, k.trap, "kill %d: the trap was in flight in %s", i+1, k.victim)
		for id, att := range k.inflight {
			d, ok := r.completionAfter(id, k)
			if !assert.True(t, ok, "kill %d: %s (in flight in %s with Attempt %d) completed later in another member", i+1, id, k.victim, att) {
				continue
			}
			if r.sc.counted {
				limit := att + r.killsBefore(d.at) - i
				assert.True(t, d.attempt >= att+1 && d.attempt <= limit,
					"kill %d: %s in flight with Attempt %d completed in %s with Attempt %d, want %d..%d (one more per kill since)", i+1, id, att, d.m, d.attempt, att+1, limit)
			} else {
				assert.Equal(t, 1, d.attempt, "kill %d: %s completed in %s: the emulator counts no delivery", i+1, id, d.m)
			}
		}
	}

	// Duplicates: every completion but one of a message is in a member
	// killed afterwards (completed, not yet acknowledged).
	for id, ds := range r.dones {
		inKilled := 0
		for _, d := range ds {
			if d.m.killed { // a victim's records all precede its death
				inKilled++
			}
		}
		assert.GreaterOrEqual(t, inKilled, len(ds)-1, "%s completed %d times, %d of them in members killed later: %s", id, len(ds), inKilled, r.timeline(id))
	}
}

// startAfter returns the first start of id after kill k in a member other
// than its victim.
func (r *run) startAfter(id string, k *kill) (event, bool) {
	for _, s := range r.starts[id] {
		if s.m != k.victim && s.at.After(k.at) {
			return s, true
		}
	}
	return event{}, false
}

// completionAfter returns the first completion of id after kill k in a
// member other than its victim.
func (r *run) completionAfter(id string, k *kill) (event, bool) {
	for _, d := range r.dones[id] {
		if d.m != k.victim && d.at.After(k.at) {
			return d, true
		}
	}
	return event{}, false
}

// report logs the figures of the run: the row of RELIABILITY.md and one
// line per kill.
func (r *run) report(elapsed time.Duration) {
	t := r.t
	dups, dupMsgs := 0, 0
	for _, ds := range r.dones {
		if len(ds) > 1 {
			dups += len(ds) - 1
			dupMsgs++
		}
	}
	handled := 0
	for _, ds := range r.dones {
		handled += len(ds)
	}
	t.Logf("%s: %d members × %d handlers, %d messages published with confirms, %d SIGKILLs mid-handler (%d member processes in all); confirmed %d, completed %d distinct (%d completions), lost %d, duplicates %d (%d messages), %d handler starts, %d first run with Attempt > 1 (fetched ahead by a victim); run %v",
		r.sc.name, r.sc.members, memberConcurrency, r.sc.messages, len(r.kills), len(r.members),
		len(r.confirmed), r.completed(), handled, len(r.confirmed)-r.completed(), dups, dupMsgs, r.handlerStarts(), r.fetchedAhead(), elapsed.Round(time.Millisecond))
	var worst time.Duration
	for i, k := range r.kills {
		var ids []string
		for id := range k.inflight {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var trapT, started, last time.Duration
		atts := map[int]int{}
		for _, id := range ids {
			if s, ok := r.startAfter(id, k); ok {
				started = max(started, s.at.Sub(k.at))
			}
			d, ok := r.completionAfter(id, k)
			if !ok {
				continue
			}
			atts[d.attempt]++
			last = max(last, d.at.Sub(k.at))
			if id == k.trap {
				trapT = d.at.Sub(k.at)
			}
		}
		worst = max(worst, last)
		t.Logf("  kill %d: %s held %d in flight (trap %s, Attempt %d); all started again elsewhere by %v after the kill, completed by %v (trap %v); their Attempts there: %v",
			i+1, k.victim, len(ids), k.trap, k.inflight[k.trap], started.Round(time.Millisecond), last.Round(time.Millisecond), trapT.Round(time.Millisecond), atts)
	}
	t.Logf("%s: time to recover (kill → last in-flight message completed elsewhere), worst of %d kills: %v (the trap's includes the parent's release; the parent handled each record at most %v after it was written)",
		r.sc.name, len(r.kills), worst.Round(time.Millisecond), r.lag.Round(time.Millisecond))
}

// timeline describes what happened to message id, for failure messages.
func (r *run) timeline(id string) string {
	var evs []event
	evs = append(evs, r.starts[id]...)
	evs = append(evs, r.dones[id]...)
	sort.Slice(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%c in %s at +%v with Attempt %d; ", e.kind, e.m, e.at.Sub(r.began).Round(time.Millisecond), e.attempt)
	}
	for i, k := range r.kills {
		fmt.Fprintf(&b, "kill %d of %s at +%v; ", i+1, k.victim, k.at.Sub(r.began).Round(time.Millisecond))
	}
	return b.String()
}

// fetchedAhead counts the messages whose first handler run had Attempt
// above 1: delivered to a member that was killed before it ran them.
func (r *run) fetchedAhead() int {
	n := 0
	for _, s := range r.starts {
		if s[0].attempt > 1 {
			n++
		}
	}
	return n
}

// handlerStarts counts the handler starts of the run.
func (r *run) handlerStarts() int {
	n := 0
	for _, s := range r.starts {
		n += len(s)
	}
	return n
}
