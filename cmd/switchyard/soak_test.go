package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The soak is tested short (3s at 200 msgs/s, a member replaced every
// 500ms) for its counts and its record, not its timings; the ten-minute
// run is a command (docs/reliability/soak-rabbitmq.json holds one).

// soakArgs is the short soak the tests run on topic.
func soakArgs(topic string, more ...string) []string {
	return append([]string{"soak", "--topic", topic, "--duration", "3s", "--rate", "200", "--churn", "500ms", "--report", "500ms"}, more...)
}

// TestSoak: with members leaving and joining, every group receives every
// confirmed message (lost 0), the record's figures agree with each other,
// and the soak's groups are gone afterwards.
func TestSoak(t *testing.T) {
	for _, tc := range []struct {
		name string
		tg   func(t *testing.T) *target
	}{{"mem", func(*testing.T) *target { return memTarget() }}, {"amqp", amqpTarget}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.tg(t)
			topic := newTopic()
			tg.cleanup(t, topic)
			r := tg.run(t, "", soakArgs(topic, "--json")...)
			requireOK(t, r)
			res := soakResult{benchResult: &benchResult{}} // json cannot allocate an embedded pointer to an unexported type
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
			require.NotNil(t, res.benchResult)
			checkSoak(t, &res)
			t.Logf("%s: published %d, received %d, duplicates %d, churns %d, rss %d→%d (max %d), goroutines %d→%d (max %d)",
				tc.name, res.Published, res.Received, res.Duplicates, res.Churns, res.Start.RSS, res.End.RSS, res.Max.RSS,
				res.Start.Goroutines, res.End.Goroutines, res.Max.Goroutines)
			assert.Equal(t, strings.Count(r.stderr, "soak "), len(res.Samples), "one progress line per sample: %q", r.stderr)

			// The groups are deleted.
			switch tc.name {
			case "mem":
				groups, err := tg.openBroker(t).ListGroups(context.Background(), topic)
				require.NoError(t, err)
				assert.Empty(t, groups)
			case "amqp":
				conn, err := amqp.Dial(tg.url)
				require.NoError(t, err)
				defer conn.Close()
				for _, g := range res.PerGroup {
					ch, err := conn.Channel()
					require.NoError(t, err)
					_, err = ch.QueueDeclarePassive(topic+":"+g.Group, true, false, false, false, nil)
					var ae *amqp.Error
					require.True(t, errors.As(err, &ae), "queue %s:%s still exists (err %v)", topic, g.Group, err)
					assert.Equal(t, amqp.NotFound, ae.Code)
				}
			}
		})
	}
}

// checkSoak checks a short soak's record.
func checkSoak(t *testing.T, res *soakResult) {
	t.Helper()
	cfg := res.benchConfig
	assert.Equal(t, benchConfig{Topic: cfg.Topic, Rate: 200, Size: 256, Publishers: 1, Consumers: 2, Groups: 2, Concurrency: 10, Confirm: 1}, cfg)
	assert.Equal(t, 0.5, res.ChurnSeconds)
	assert.Equal(t, 0.5, res.ReportSeconds)
	assert.Positive(t, res.Published)
	assert.LessOrEqual(t, res.Published, int64(601), "one publisher at 200/s for 3s sends at most 601")

	// Counts: every group got every confirmed message; the totals are the
	// groups' sums. Close is graceful (running handlers finish and are
	// acked, unstarted messages go back unhandled), so a replaced member
	// causes no duplicate.
	assert.Zero(t, res.Lost)
	assert.Zero(t, res.Missing)
	assert.Zero(t, res.Foreign)
	assert.False(t, res.Interrupted)
	require.Len(t, res.PerGroup, 2)
	var received, duplicates int64
	for _, g := range res.PerGroup {
		assert.True(t, strings.HasPrefix(g.Group, "bench-"), g.Group)
		assert.Zero(t, g.Lost, g.Group)
		assert.Equal(t, res.Published, g.Received, "group %s received every confirmed message once", g.Group)
		assert.Zero(t, g.Duplicates, g.Group)
		received += g.Received
		duplicates += g.Duplicates
	}
	assert.Equal(t, received, res.Received)
	assert.Equal(t, duplicates, res.Duplicates)
	assert.Equal(t, res.Received, res.Latency.Samples)

	// Churn: at least one member was replaced, and at most one per 500ms.
	assert.GreaterOrEqual(t, res.Churns, int64(1))
	assert.LessOrEqual(t, res.Churns, int64(6))

	// Resources: present, the maximum covers every sample, the progress
	// never goes back nor beyond the end.
	assert.Equal(t, rssProc, res.RSSSource, "this is Linux: /proc is there")
	all := append([]soakSample{res.Start, res.End}, res.Samples...)
	require.GreaterOrEqual(t, len(res.Samples), 1)
	var last soakSample
	for _, s := range all {
		assert.Positive(t, s.RSS)
		assert.Positive(t, s.Goroutines)
		assert.Positive(t, s.HeapInuse)
		assert.Positive(t, s.HeapLive)
		assert.LessOrEqual(t, s.RSS, res.Max.RSS)
		assert.LessOrEqual(t, s.Goroutines, res.Max.Goroutines)
		assert.LessOrEqual(t, s.HeapInuse, res.Max.HeapInuse)
		assert.LessOrEqual(t, s.HeapLive, res.Max.HeapLive)
	}
	for _, s := range res.Samples {
		assert.GreaterOrEqual(t, s.ElapsedSeconds, last.ElapsedSeconds)
		assert.GreaterOrEqual(t, s.Published, last.Published)
		assert.LessOrEqual(t, s.Published, res.Published)
		assert.LessOrEqual(t, s.Received, res.Received)
		last = s
	}
	assert.Equal(t, res.Published, res.End.Published)
	assert.Equal(t, res.Received, res.End.Received)
	assert.Zero(t, res.Start.ElapsedSeconds)
	assert.GreaterOrEqual(t, res.End.ElapsedSeconds, last.ElapsedSeconds)
	assert.Greater(t, res.Max.Goroutines, res.Start.Goroutines, "the members' goroutines ran")

	// A 3s run is too short for a verdict, and says so.
	assert.Equal(t, verdictUndecided, res.Verdict)
	require.Len(t, res.Why, 1)
	assert.Contains(t, res.Why[0], "the verdict needs 8 and at least 1m0s")
}

// TestSoakText: the report for people, and --out.
func TestSoakText(t *testing.T) {
	tg := memTarget()
	out := t.TempDir() + "/soak.json"
	r := tg.run(t, "", soakArgs("switchyard-soak", "--groups", "1", "--out", out)...)
	requireOK(t, r)
	text := r.stdout
	for _, want := range []string{"bench " + tg.url + " topic switchyard-soak: 1 group(s) x 2 consumer(s)", "\nchurn      ", " members replaced, one every 0.5s\n",
		"\ngroup      bench-", "duplicates 0, lost 0\n", "\nlost       0\n", "\nstart      rss ", "\nend        rss ", "\nmax        rss ",
		"\nrss from   /proc/self/status VmRSS\n", "\nverdict    undecided\n"} {
		assert.Contains(t, text, want)
	}
	rec := readSoak(t, out)
	require.NotNil(t, rec.benchResult)
	assert.Zero(t, rec.Lost)
	assert.Equal(t, verdictUndecided, rec.Verdict)
	assert.Equal(t, "switchyard --url "+tg.url+" soak --topic switchyard-soak --duration 3s --rate 200 --churn 500ms --report 500ms --groups 1 --out "+out, rec.Command)
}

// TestSoakUsage: bad flags are usage errors.
func TestSoakUsage(t *testing.T) {
	tg := memTarget()
	for _, args := range [][]string{
		{"soak", "--rate", "0"},
		{"soak", "--duration", "0s"},
		{"soak", "--churn", "-1s"},
		{"soak", "--report", "0s"},
		{"soak", "--size", "10"},
		{"soak", "extra"},
	} {
		r := tg.run(t, "", args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
	}
}

// TestJudge: the verdict's rule on made-up samples.
func TestJudge(t *testing.T) {
	const d = 10 * time.Minute
	// series makes 40 samples, every 15s, from f(i).
	series := func(f func(i int, s *soakSample)) []soakSample {
		var out []soakSample
		for i := range 40 {
			s := soakSample{ElapsedSeconds: float64(i+1) * 15, RSS: 40 << 20, HeapLive: 5 << 20, Goroutines: 70}
			f(i, &s)
			out = append(out, s)
		}
		return out
	}
	v, why := judge(series(func(i int, s *soakSample) {
		s.RSS += int64(i%3) << 20 // noise
		s.Goroutines += i % 7     // members churning
	}), d)
	assert.Equal(t, verdictFlat, v, why)
	assert.Empty(t, why)

	v, _ = judge(series(func(i int, s *soakSample) {
		if s.ElapsedSeconds < 60 { // warm-up: not judged
			s.RSS, s.Goroutines = 1<<20, 10
		}
	}), d)
	assert.Equal(t, verdictFlat, v)

	v, why = judge(series(func(i int, s *soakSample) { s.RSS += int64(i) << 20 }), d)
	assert.Equal(t, verdictGrowing, v)
	require.Len(t, why, 1)
	assert.True(t, strings.HasPrefix(why[0], "rss: median "), why[0])

	v, why = judge(series(func(i int, s *soakSample) { s.Goroutines += i / 2; s.HeapLive += int64(i) << 19 }), d)
	assert.Equal(t, verdictGrowing, v)
	require.Len(t, why, 2)
	assert.True(t, strings.HasPrefix(why[0], "heap live: "), why[0])
	assert.True(t, strings.HasPrefix(why[1], "goroutines: "), why[1])

	// Growth under the floors or under 10% is not growth.
	v, _ = judge(series(func(i int, s *soakSample) { s.Goroutines += i / 8; s.RSS += int64(i) << 18 }), d)
	assert.Equal(t, verdictFlat, v)

	v, why = judge(series(func(int, *soakSample) {})[:5], d)
	assert.Equal(t, verdictUndecided, v)
	assert.Len(t, why, 1)
	v, _ = judge(series(func(int, *soakSample) {}), 30*time.Second)
	assert.Equal(t, verdictUndecided, v, "a run under a minute")
}

// TestSeqSetMissingFrom: lost is counted from the sets, exactly.
func TestSeqSetMissingFrom(t *testing.T) {
	var confirmed, seen seqSet
	for i := range uint64(200_000) {
		confirmed.add(i)
		if i%1000 != 7 && i != 199_999 {
			seen.add(i)
		}
	}
	seen.add(300_000) // received but never confirmed: not lost
	assert.Equal(t, int64(201), confirmed.missingFrom(&seen))
	assert.Equal(t, int64(1), seen.missingFrom(&confirmed))
	var empty seqSet
	assert.Equal(t, int64(200_000), confirmed.missingFrom(&empty))
}

// readSoak decodes the soak record at path.
func readSoak(t *testing.T, path string) soakResult {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	res := soakResult{benchResult: &benchResult{}}
	require.NoError(t, json.Unmarshal(data, &res))
	return res
}
