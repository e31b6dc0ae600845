package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// benchOptions are bench's flags.
type benchOptions struct {
	cfg    benchConfig
	json   bool
	matrix bool
	rates  string
	chart  string
	out    string
}

const benchLong = `bench is a portable load generator: the same load on any broker, measured
the same way. Publishers send messages of --size bytes to a topic, each
Publish call carrying --confirm messages and returning once the broker
durably accepted them, at a fixed arrival rate (--rate, over all
publishers; 0 sends as fast as the broker confirms), for --duration or
--count messages. --groups consumer groups of the topic each run
--consumers subscriptions of --concurrency handlers.

It prints the publish and receive throughput, and the end-to-end latency
percentiles (p50, p90, p99, p99.9, max) from an HDR histogram of every
message's first delivery to each group. Latency is measured from the
Publish call to the start of the handler, in this one process, with this
machine's monotonic clock; with --confirm above 1 the messages of a batch
share the time of their Publish call. Counts are checked: every group must
receive every published message within --drain after publishing ends, or
bench exits 1; duplicates are counted, not timed.

bench creates its groups ("bench-" and a random tag) on --topic and deletes
them when it ends, also on Ctrl-C, which stops the load and prints what was
measured so far. Messages of other runs on the same topic are ignored.
For a long run with members leaving and joining, and this process's
memory and goroutines watched, see "switchyard soak".

--matrix runs the load at each of --rates on each broker URL given as an
argument, or, with none, on every broker reachable here (mem://; RabbitMQ at
$SWITCHYARD_AMQP_URL or amqp://guest:guest@127.0.0.1:5672/; NATS at
127.0.0.1:4222; the Pub/Sub emulator at $PUBSUB_EMULATOR_HOST, as
gcppubsub://switchyard-bench), among the schemes this build knows. It
prints a table (--json: the whole record), writes the record to --out and a
chart of throughput and p99 latency to --chart (.png or .svg), both noting
the command and the machine. The chart marks with "*" the runs that were
still missing deliveries when --drain ended (their figures cover what
arrived), and names runs on a Pub/Sub emulator as such.`

func (a *app) benchCmd() *cobra.Command {
	var o benchOptions
	c := &cobra.Command{
		Use:   "bench [--matrix [URL...]]",
		Short: "Measure a broker: throughput and end-to-end latency percentiles",
		Long:  benchLong,
		Example: `  switchyard bench --url amqp://guest:guest@localhost:5672/ --rate 1000 --duration 30s
  switchyard bench --publishers 4 --confirm 100 --groups 2 --count 1000000 --json
  switchyard bench --matrix --duration 10s --chart docs/bench.png --out docs/bench.json`,
		Args: cobra.ArbitraryArgs,
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd, args); err != nil {
				return err
			}
			if o.matrix {
				return a.benchMatrix(o, args)
			}
			return a.bench(o)
		}),
	}
	addLoadFlags(c, &o.cfg, benchConfig{
		Topic: "switchyard-bench", Rate: 0, Size: 256, Publishers: 1, Consumers: 1, Groups: 1,
		Concurrency: 10, Confirm: 1, Duration: 10 * time.Second, Drain: 30 * time.Second,
	}, "messages per second over all publishers (0: as fast as the broker confirms)")
	f := c.Flags()
	f.Int64Var(&o.cfg.Count, "count", 0, "publish this many messages instead of for --duration")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.BoolVar(&o.matrix, "matrix", false, "run the load on several brokers (the URL arguments, or every one reachable) at each of --rates")
	f.StringVar(&o.rates, "rates", "1000,max", "with --matrix: the rates to run, comma-separated (max: unbounded)")
	f.StringVar(&o.chart, "chart", "", "with --matrix: write a chart of throughput and p99 latency to this .png or .svg file")
	f.StringVar(&o.out, "out", "", "with --matrix: write the JSON record to this file")
	return c
}

// addLoadFlags defines on c the flags of the load that bench and soak share,
// binding them to cfg, with def's fields as their defaults and rateHelp as
// the help of --rate.
func addLoadFlags(c *cobra.Command, cfg *benchConfig, def benchConfig, rateHelp string) {
	f := c.Flags()
	f.StringVar(&cfg.Topic, "topic", def.Topic, "topic to load")
	f.Float64Var(&cfg.Rate, "rate", def.Rate, rateHelp)
	f.IntVar(&cfg.Size, "size", def.Size, fmt.Sprintf("payload bytes (at least %d, the bench header)", headerSize))
	f.IntVar(&cfg.Publishers, "publishers", def.Publishers, "concurrent publishers")
	f.IntVar(&cfg.Consumers, "consumers", def.Consumers, "subscriptions per group")
	f.IntVar(&cfg.Groups, "groups", def.Groups, "consumer groups, each receiving every message")
	f.IntVar(&cfg.Concurrency, "concurrency", def.Concurrency, "handlers per subscription")
	f.IntVar(&cfg.Confirm, "confirm", def.Confirm, "messages per Publish call, confirmed together")
	f.DurationVar(&cfg.Duration, "duration", def.Duration, "how long to publish")
	f.DurationVar(&cfg.Drain, "drain", def.Drain, "how long to wait, after publishing, for every group to receive everything")
}

// validate checks the flags as a whole.
func (o *benchOptions) validate(cmd *cobra.Command, args []string) error {
	c := o.cfg
	switch {
	case !o.matrix && len(args) > 0:
		return usagef("unexpected argument %q (URLs as arguments go with --matrix; otherwise use --url)", args[0])
	case !o.matrix && (o.chart != "" || o.out != "" || cmd.Flags().Changed("rates")):
		return usagef("--rates, --chart and --out go with --matrix")
	case c.Count < 0:
		return usagef("--count %d: want 0 or more", c.Count)
	case c.Count > 0 && cmd.Flags().Changed("duration"):
		return usagef("give --duration or --count, not both")
	case c.Count == 0 && c.Duration <= 0:
		return usagef("--duration %v: want a positive duration", c.Duration)
	}
	if err := c.validate(); err != nil {
		return err
	}
	if o.chart != "" && !strings.HasSuffix(o.chart, ".png") && !strings.HasSuffix(o.chart, ".svg") {
		return usagef("--chart %q: want a .png or .svg file", o.chart)
	}
	if _, err := parseRates(o.rates); err != nil {
		return usageError{err}
	}
	return nil
}

// validate checks the flags that describe the load, which bench and soak
// share.
func (c benchConfig) validate() error {
	switch {
	case c.Size < headerSize:
		return usagef("--size %d: want at least %d", c.Size, headerSize)
	case c.Rate < 0:
		return usagef("--rate %v: want 0 (unbounded) or more", c.Rate)
	case c.Publishers < 1 || c.Consumers < 1 || c.Groups < 1 || c.Concurrency < 1 || c.Confirm < 1:
		return usagef("--publishers, --consumers, --groups, --concurrency and --confirm must be at least 1")
	case c.Drain <= 0:
		return usagef("--drain %v: want a positive duration", c.Drain)
	}
	return checkNames(c.Topic, "")
}

// bench runs one load on --url and prints the result.
func (a *app) bench(o benchOptions) error {
	res, err := a.benchOne(a.url, o.cfg)
	if res != nil {
		if o.json {
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil {
				return jerr
			}
		} else {
			printBench(a.stdout, res)
		}
	}
	if err != nil {
		return err
	}
	return benchVerdict(res, o.cfg.Drain)
}

// benchVerdict turns an incomplete run into an error: interrupted (exit
// 130) or messages missing after the drain (exit 1).
func benchVerdict(res *benchResult, drain time.Duration) error {
	switch {
	case res.Interrupted:
		return context.Canceled
	case res.Missing > 0:
		return fmt.Errorf("%d of %d deliveries missing %v after publishing ended (see --drain)", res.Missing, res.Published*int64(res.Groups), drain)
	}
	return nil
}

// benchOne opens rawURL and runs cfg on it, with a progress bar on a
// terminal.
func (a *app) benchOne(rawURL string, cfg benchConfig) (*benchResult, error) {
	saved := a.url
	a.url = rawURL
	defer func() { a.url = saved }()
	b, err := a.open()
	if err != nil {
		return nil, err
	}
	defer a.closeBroker(b)

	var onTick func(published, received int64, draining bool)
	var bar *progressbar.ProgressBar
	if a.showProgress(true) {
		max := int64(cfg.Duration / time.Millisecond)
		if cfg.Count > 0 {
			max = cfg.Count
		}
		bar = a.newBar(max, "bench "+showURL(rawURL), progressbar.OptionSetPredictTime(false), progressbar.OptionSetElapsedTime(true))
		start := time.Now()
		want := int64(cfg.Groups)
		onTick = func(published, received int64, draining bool) {
			phase := "publishing"
			if draining {
				phase = "draining"
			}
			bar.Describe(fmt.Sprintf("%s: sent %d, received %d/%d", phase, published, received, published*want))
			// The bar finishes (and ends its line) only when the run does.
			if cfg.Count > 0 {
				_ = bar.Set64(min(published, max-1))
			} else {
				_ = bar.Set64(min(int64(time.Since(start)/time.Millisecond), max-1))
			}
		}
	}
	res, err := runBench(a.ctx, b, cfg, a.timeout, onTick)
	if bar != nil {
		_ = bar.Finish()
	}
	a.describe(res, rawURL)
	return res, err
}

// describe notes in res (when not nil) the broker it ran on.
func (a *app) describe(res *benchResult, rawURL string) {
	if res == nil {
		return
	}
	res.URL = showURL(rawURL)
	if u, perr := url.Parse(rawURL); perr == nil {
		res.Transport = u.Scheme
	}
	if res.Transport == "gcppubsub" {
		res.Emulator = a.getenv("PUBSUB_EMULATOR_HOST")
	}
}

// printBench prints a result for people.
func printBench(w io.Writer, r *benchResult) {
	rate := "unbounded rate"
	if r.Rate > 0 {
		rate = fmt.Sprintf("rate %g msgs/s", r.Rate)
	}
	length := fmt.Sprintf("%d messages", r.Count)
	if r.Count == 0 {
		length = fmt.Sprintf("%v", time.Duration(r.DurationSeconds*float64(time.Second)))
	}
	fmt.Fprintf(w, "bench %s topic %s: %d group(s) x %d consumer(s) x %d handlers, %d publisher(s), confirm batch %d, %d-byte payloads, %s, %s\n",
		r.URL, r.Topic, r.Groups, r.Consumers, r.Concurrency, r.Publishers, r.Confirm, r.Size, rate, length)
	fmt.Fprintf(w, "published  %d msgs in %.2fs = %.0f msgs/s\n", r.Published, r.PublishSeconds, r.PublishRate)
	fmt.Fprintf(w, "received   %d msgs in %.2fs = %.0f msgs/s over %d group(s); duplicates %d, missing %d\n",
		r.Received, r.ElapsedSeconds, r.ReceiveRate, r.Groups, r.Duplicates, r.Missing)
	l := r.Latency
	fmt.Fprintf(w, "latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%d samples, publish call to handler start)\n",
		ns(l.P50), ns(l.P90), ns(l.P99), ns(l.P999), ns(l.Max), l.Samples)
	if r.Foreign > 0 {
		fmt.Fprintf(w, "ignored    %d messages of other runs on the same topic\n", r.Foreign)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: the figures cover the run until Ctrl-C")
	}
}

// ns renders a latency with three significant digits.
func ns(v int64) string {
	d := float64(v)
	switch {
	case v < 1_000:
		return fmt.Sprintf("%dns", v)
	case v < 1_000_000:
		return sig3(d/1e3) + "µs"
	case v < 1_000_000_000:
		return sig3(d/1e6) + "ms"
	}
	return sig3(d/1e9) + "s"
}

// sig3 formats x (at least 1) with three significant digits.
func sig3(x float64) string {
	switch {
	case x < 10:
		return fmt.Sprintf("%.2f", x)
	case x < 100:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.0f", x)
}
