package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/vg"

	"github.com/switchyard-go/switchyard/internal/brokertest"
	"github.com/switchyard-go/switchyard/internal/redact"
)

// checkBench checks a bench result for correctness, not speed: every
// group received every message once, and the percentiles are ordered.
func checkBench(t *testing.T, res benchResult, published int64, groups int) {
	t.Helper()
	assert.Equal(t, published, res.Published)
	assert.Equal(t, published*int64(groups), res.Received)
	assert.Zero(t, res.Missing)
	assert.Zero(t, res.Duplicates)
	assert.Zero(t, res.Foreign)
	assert.False(t, res.Interrupted)
	l := res.Latency
	assert.Equal(t, res.Received, l.Samples, "one latency per first delivery")
	assert.Positive(t, l.Min)
	assert.LessOrEqual(t, l.Min, l.P50)
	assert.LessOrEqual(t, l.P50, l.P90)
	assert.LessOrEqual(t, l.P90, l.P99)
	assert.LessOrEqual(t, l.P99, l.P999)
	assert.LessOrEqual(t, l.P999, l.Max)
	assert.LessOrEqual(t, float64(l.Min), l.Mean)
	assert.LessOrEqual(t, l.Mean, float64(l.Max))
	assert.Positive(t, res.PublishRate)
	assert.Positive(t, res.ReceiveRate)
	assert.LessOrEqual(t, res.PublishSeconds, res.ElapsedSeconds)
}

func decodeBench(t *testing.T, r result) benchResult {
	t.Helper()
	requireOK(t, r)
	var res benchResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	return res
}

// TestBench: counts match on every broker, with several publishers,
// groups and consumers, and the bench groups are deleted afterwards.
func TestBench(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		count := int64(3000)
		if tg.process {
			count = 600
		}
		topic := newTopic()
		tg.cleanup(t, topic)
		r := tg.run(t, "", "bench", "--topic", topic, "--count", strconv.FormatInt(count, 10), "--groups", "2", "--consumers", "2",
			"--publishers", "2", "--confirm", "10", "--size", "100", "--json")
		res := decodeBench(t, r)
		checkBench(t, res, count, 2)
		assert.Equal(t, redact.URL(tg.url), res.URL, "the record names the broker without its password")
		assert.Equal(t, strings.SplitN(tg.url, ":", 2)[0], res.Transport)
		assert.Equal(t, benchConfig{Topic: topic, Size: 100, Publishers: 2, Consumers: 2, Groups: 2, Concurrency: 10, Confirm: 10, Count: count}, res.benchConfig)

		b := tg.openBroker(t)
		groups, err := b.ListGroups(context.Background(), topic)
		if tg.name == "amqp" {
			assert.ErrorIs(t, err, errors.ErrUnsupported)
		} else {
			require.NoError(t, err)
			assert.Empty(t, groups, "bench deleted its groups")
		}
	})
}

// TestBenchRate: at a fixed rate, the last message is not sent before its
// time, and a duration run stops on time.
func TestBenchRate(t *testing.T) {
	tg := memTarget()
	res := decodeBench(t, tg.run(t, "", "bench", "--rate", "500", "--count", "100", "--json"))
	checkBench(t, res, 100, 1)
	assert.GreaterOrEqual(t, res.PublishSeconds, 99.0/500, "message 100 is due 198ms after the first")

	res = decodeBench(t, tg.run(t, "", "bench", "--rate", "1000", "--duration", "300ms", "--json"))
	assert.Positive(t, res.Published)
	assert.LessOrEqual(t, res.Published, int64(301), "one publisher at 1000/s for 300ms sends at most 301")
	checkBench(t, res, res.Published, 1)
	assert.Equal(t, 0.3, res.DurationSeconds)
}

// TestBenchText: the report for people.
func TestBenchText(t *testing.T) {
	tg := memTarget()
	r := tg.run(t, "", "bench", "--count", "500", "--rate", "5000")
	requireOK(t, r)
	out := lines(r.stdout)
	require.Len(t, out, 4, r.stdout)
	assert.Equal(t, "bench "+tg.url+" topic switchyard-bench: 1 group(s) x 1 consumer(s) x 10 handlers, 1 publisher(s), confirm batch 1, 256-byte payloads, rate 5000 msgs/s, 500 messages", out[0])
	assert.True(t, strings.HasPrefix(out[1], "published  500 msgs in "), out[1])
	assert.True(t, strings.HasSuffix(out[2], "over 1 group(s); duplicates 0, missing 0"), out[2])
	for _, p := range []string{"latency    p50 ", " p90 ", " p99 ", " p99.9 ", " max ", "(500 samples, publish call to handler start)"} {
		assert.Contains(t, out[3], p)
	}
}

// TestBenchInterrupt: Ctrl-C stops the load, prints what was measured,
// deletes the bench groups and exits 130.
func TestBenchInterrupt(t *testing.T) {
	tg := memProcess()
	bg := tg.start(t, "", "bench", "--rate", "100", "--duration", "1h", "--progress", "always")
	bg.stderr.waitFor(t, "publishing: sent")
	bg.interrupt()
	r := bg.wait(t)
	assert.Equal(t, 130, r.code, r.stderr)
	assert.Contains(t, r.stdout, "interrupted: the figures cover the run until Ctrl-C")
	assert.True(t, strings.HasSuffix(r.stderr, "switchyard: interrupted\n"), r.stderr)
}

// TestBenchMatrix: --matrix runs each rate on each URL and writes the
// record and the chart (PNG and SVG).
func TestBenchMatrix(t *testing.T) {
	dir := t.TempDir()
	tg := memTarget()
	chart, out := filepath.Join(dir, "bench.png"), filepath.Join(dir, "bench.json")
	r := tg.run(t, "", "bench", "--matrix", tg.url, "mem://second", "--count", "200", "--rates", "2000,max", "--chart", chart, "--out", out)
	requireOK(t, r)
	assert.Contains(t, r.stderr, "switchyard: chart written to "+chart)
	rows := lines(r.stdout)
	require.Len(t, rows, 7, r.stdout) // command, machine, blank skipped, header, 4 rows
	assert.True(t, strings.HasPrefix(rows[0], "switchyard --url "+tg.url+" bench --matrix"), rows[0])
	assert.Equal(t, []string{"BROKER", "RATE", "PUBLISHED"}, strings.Fields(rows[2])[:3])

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var rec matrixRecord
	require.NoError(t, json.Unmarshal(data, &rec))
	assert.Equal(t, "switchyard --url "+tg.url+" bench --matrix "+tg.url+" mem://second --count 200 --rates 2000,max --chart "+chart+" --out "+out, rec.Command)
	assert.Contains(t, rec.Machine, "CPUs")
	require.Len(t, rec.Results, 4)
	for i, want := range []struct {
		url  string
		rate float64
	}{{tg.url, 2000}, {tg.url, 0}, {"mem://second", 2000}, {"mem://second", 0}} {
		assert.Equal(t, want.url, rec.Results[i].URL)
		assert.Equal(t, want.rate, rec.Results[i].Rate)
		checkBench(t, *rec.Results[i], 200, 1)
	}

	f, err := os.Open(chart)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 10*96, img.Bounds().Dx())

	svg := filepath.Join(dir, "bench.svg")
	requireOK(t, tg.run(t, "", "bench", "--matrix", tg.url, "--count", "100", "--rates", "max", "--chart", svg))
	data, err = os.ReadFile(svg)
	require.NoError(t, err)
	assert.True(t, bytes.Contains(data, []byte("<svg")), "an SVG file")
	assert.True(t, bytes.Contains(data, []byte("p99 latency")), "with the latency panel")
}

// TestBenchMatrixDiscovers: without URLs, --matrix runs on mem:// and says
// which brokers it left out and why.
func TestBenchMatrixDiscovers(t *testing.T) {
	tg := memTarget()
	topic := newTopic()
	r := tg.run(t, "", "bench", "--matrix", "--topic", topic, "--count", "100", "--rates", "max", "--json")
	requireOK(t, r)
	var rec matrixRecord
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec))
	require.NotEmpty(t, rec.Results)
	for _, res := range rec.Results {
		switch res.Transport {
		case "amqp": // the record's URL has no password: discovery's default (getenv is empty here)
			deleteTopic(t, brokertest.DefaultAMQPURL, nil, topic)
		case "nats", "gcppubsub":
			deleteTopic(t, res.URL, nil, topic)
		}
	}
	assert.Equal(t, "mem://bench", rec.Results[0].URL)
	for _, res := range rec.Results {
		checkBench(t, *res, 100, 1)
	}
	for transport, what := range map[string]string{"amqp": "RabbitMQ", "nats": "NATS", "gcppubsub": "the Pub/Sub emulator (PUBSUB_EMULATOR_HOST)"} {
		if !slices.ContainsFunc(rec.Results, func(r *benchResult) bool { return r.Transport == transport }) {
			assert.Contains(t, r.stderr, "switchyard: matrix: "+what+" left out: ")
		}
	}
}

// TestChartMarks: the chart names emulators, marks incomplete runs and
// labels its axes in counts and durations.
func TestChartMarks(t *testing.T) {
	run := func(url, transport, emulator string, rate, received float64, p99 int64, missing int64) *benchResult {
		return &benchResult{URL: url, Transport: transport, Emulator: emulator, benchConfig: benchConfig{Rate: rate},
			ReceiveRate: received, Missing: missing, Latency: latencySummary{P99: p99}}
	}
	rec := &matrixRecord{Command: "switchyard bench --matrix", Machine: "test machine", Date: "2026-01-02T03:04:05Z", Results: []*benchResult{
		run("mem://bench", "mem", "", 1000, 1001, 81_600, 0),
		run("mem://bench", "mem", "", 0, 946_482, 145_000_000, 0),
		run("gcppubsub://p", "gcppubsub", "localhost:8085", 1000, 64, 37_000_000_000, 7451),
	}}
	path := filepath.Join(t.TempDir(), "chart.svg")
	require.NoError(t, writeChart(path, rec))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	svg := string(data)
	for _, want := range []string{">mem<", ">gcppubsub<", ">(emulator)<", ">64*<", ">1001<", ">946482<", ">37.0s*<", ">81.6µs<",
		">1k<", ">1M<", ">100µs<", ">10s<", ">1000 msgs/s<", ">max rate<",
		"* incomplete run: some deliveries had not arrived when --drain ended"} {
		assert.Contains(t, svg, want)
	}
	assert.NotContains(t, svg, ">1001*<", "complete runs are not marked")

	rec.Results = rec.Results[:2]
	require.NoError(t, writeChart(path, rec))
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "incomplete run", "no note without an incomplete run")
}

func TestAxisLabels(t *testing.T) {
	for v, want := range map[float64]string{1: "1", 100: "100", 1000: "1k", 10_000: "10k", 1e6: "1M", 2e9: "2G"} {
		assert.Equal(t, want, count3(v))
	}
	for v, want := range map[float64]string{100: "100ns", 1e3: "1µs", 1e5: "100µs", 1e6: "1ms", 1e9: "1s", 1e11: "100s"} {
		assert.Equal(t, want, durationTick(v))
	}
}

func TestWrap(t *testing.T) {
	width := func(s string) vg.Length { return vg.Length(len(s)) }
	assert.Equal(t, []string{"aa bb", "cc", "dddddddd", "e"}, wrap("aa bb cc dddddddd e", 5, width))
	assert.Equal(t, []string{"one line"}, wrap("one  line", 80, width))
	assert.Empty(t, wrap("", 5, width))
}
