package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// soakOptions are soak's flags.
type soakOptions struct {
	cfg    benchConfig
	report time.Duration
	json   bool
	out    string
}

const soakLong = `soak runs bench's load for a long time at a fixed rate while the members of
the groups come and go, and watches this process's memory and goroutines:
what a long-running service does to the library.

Publishers send --rate messages per second (of --size bytes, --confirm per
Publish call) for --duration; --groups consumer groups each run --consumers
subscriptions of --concurrency handlers. Every --churn one member (the next
in turn, over all groups) leaves with Subscription.Close, which lets its
running handlers finish and hands back what it had not started, and a new
member of the same group subscribes in its place. After publishing it waits
up to --drain for every group to receive every confirmed message. The rate
is a schedule: a publisher behind it (each Publish waits for the broker's
confirmation) sends at once until it catches up, so publish_rate in the
record is the rate achieved; raise --publishers when one cannot keep up.

Every --report it prints the messages published and received, the members
replaced, and the process's RSS (from /proc/self/status VmRSS; where /proc
is missing, the memory the Go runtime has mapped and not released, from
runtime/metrics: the record names its source), goroutines, heap in use
(runtime.MemStats.HeapInuse) and live heap (what the last GC kept). At the
end it reports, with --json as one JSON object (also written to --out):
published (confirmed by the broker), received, duplicates and lost per
group (lost: confirmed messages the group never received after the drain),
the resources at the start (broker connected, before the groups), at the
end (groups deleted, members closed, broker still connected) and their
maximum, every sample, and a verdict:

  flat       no resource grew
  growing    RSS, live heap or goroutines grew: the samples of the first
             tenth of the run are warm-up and left out; of the rest, up to
             the end of publishing, the median of the second half exceeds
             the median of the first by more than 10% and by more than
             8 MiB (RSS), 4 MiB (live heap) or 5 (goroutines)
  undecided  the run was shorter than a minute or had fewer than 8 samples
             after the warm-up

It exits 1 when a group lost a message or was still missing some after the
drain, when a member could not leave or join, or when the verdict is
growing; 130 on Ctrl-C, after printing what was measured.

soak creates its groups ("bench-" and a random tag) on --topic and deletes
them when it ends, also on Ctrl-C. The topic itself stays (the library
cannot delete topics): on RabbitMQ an exchange without queues; on NATS a
stream that holds what no group had settled, which "nats stream rm"
removes.`

func (a *app) soakCmd() *cobra.Command {
	var o soakOptions
	c := &cobra.Command{
		Use:   "soak",
		Short: "Run a fixed load for a long time with members joining and leaving; watch memory and goroutines",
		Long:  soakLong,
		Example: `  switchyard soak --url amqp://guest:guest@localhost:5672/ --rate 500 --duration 10m --churn 20s --json --out soak.json
  switchyard soak --url nats://localhost:4222 --duration 3m --report 10s`,
		Args: exactArgs(),
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return a.soak(o)
		}),
	}
	addLoadFlags(c, &o.cfg, benchConfig{
		Topic: "switchyard-soak", Rate: 1000, Size: 256, Publishers: 1, Consumers: 2, Groups: 2,
		Concurrency: 10, Confirm: 1, Duration: 10 * time.Minute, Drain: time.Minute,
	}, "messages per second over all publishers")
	f := c.Flags()
	f.DurationVar(&o.cfg.Churn, "churn", 20*time.Second, "replace one member (close it, subscribe a new one) this often; 0: never")
	f.DurationVar(&o.report, "report", 15*time.Second, "how often to sample and print the progress and resources")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.StringVar(&o.out, "out", "", "also write the JSON result to this file")
	return c
}

// validate checks the flags as a whole.
func (o *soakOptions) validate() error {
	switch {
	case o.cfg.Rate <= 0:
		return usagef("--rate %v: want a positive rate (a soak runs at a fixed rate)", o.cfg.Rate)
	case o.cfg.Duration <= 0:
		return usagef("--duration %v: want a positive duration", o.cfg.Duration)
	case o.cfg.Churn < 0:
		return usagef("--churn %v: want 0 (no churn) or a positive duration", o.cfg.Churn)
	case o.report <= 0:
		return usagef("--report %v: want a positive duration", o.report)
	}
	return o.cfg.validate()
}

// soakResult is what a soak measured.
type soakResult struct {
	Command string `json:"command"`
	Machine string `json:"machine"`
	Date    string `json:"date"`
	*benchResult
	ChurnSeconds  float64 `json:"churn_s"`
	ReportSeconds float64 `json:"report_s"`
	Lost          int64   `json:"lost"` // over the groups

	RSSSource string       `json:"rss_source"`
	Start     soakSample   `json:"start"`
	End       soakSample   `json:"end"`
	Max       soakMax      `json:"max"`
	Samples   []soakSample `json:"samples"`
	Verdict   string       `json:"verdict"`
	Why       []string     `json:"why,omitempty"` // what grew, or why undecided
}

// soak runs the soak on --url and prints the result.
func (a *app) soak(o soakOptions) error {
	b, err := a.open()
	if err != nil {
		return err
	}
	defer a.closeBroker(b)
	res := &soakResult{Command: a.commandLine(), Machine: machine(), Date: time.Now().UTC().Format(time.RFC3339),
		ChurnSeconds: o.cfg.Churn.Seconds(), ReportSeconds: o.report.Seconds()}
	runtime.GC()
	res.RSSSource = sampleResources(&res.Start)

	// The sampler runs while the load does; it reads the load's progress
	// from runBench's ticks.
	var published, received atomic.Int64
	onTick := func(p, r int64, _ bool) { published.Store(p); received.Store(r) }
	start := time.Now()
	stop, sampled := make(chan struct{}), make(chan []soakSample, 1)
	go func() {
		var samples []soakSample
		t := time.NewTicker(o.report)
		defer t.Stop()
		for {
			select {
			case <-stop:
				sampled <- samples
				return
			case <-t.C:
				s := soakSample{ElapsedSeconds: time.Since(start).Seconds(), Published: published.Load(), Received: received.Load()}
				sampleResources(&s)
				samples = append(samples, s)
				printSample(a.stderr, s)
			}
		}
	}()
	br, runErr := runBench(a.ctx, b, o.cfg, a.timeout, onTick)
	close(stop)
	res.Samples = <-sampled
	if br == nil {
		return runErr
	}
	a.describe(br, a.url)
	res.benchResult = br
	runtime.GC()
	sampleResources(&res.End)
	res.End.ElapsedSeconds = time.Since(start).Seconds()
	res.End.Published, res.End.Received = br.Published, br.Received
	res.Start.Published, res.Start.Received = 0, 0
	res.Max = maxOf(append([]soakSample{res.Start, res.End}, res.Samples...)...)
	for _, g := range br.PerGroup {
		res.Lost += g.Lost
	}
	res.Verdict, res.Why = judge(res.Samples, o.cfg.Duration)

	if o.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printSoak(a.stdout, res)
	}
	if o.out != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	return soakVerdict(res, o.cfg.Drain)
}

// soakVerdict turns a failed soak into an error.
func soakVerdict(res *soakResult, drain time.Duration) error {
	if res.Lost > 0 {
		return fmt.Errorf("%d confirmed messages lost (never received by a group)", res.Lost)
	}
	if err := benchVerdict(res.benchResult, drain); err != nil {
		return err
	}
	if res.Verdict == verdictGrowing {
		return errors.New("resources growing: " + strings.Join(res.Why, "; "))
	}
	return nil
}

// printSample prints one periodic line.
func printSample(w io.Writer, s soakSample) {
	fmt.Fprintf(w, "soak %7.1fs: published %d, received %d; rss %s, goroutines %d, heap in use %s, live %s\n",
		s.ElapsedSeconds, s.Published, s.Received, mib(s.RSS), s.Goroutines, mib(s.HeapInuse), mib(s.HeapLive))
}

// printSoak prints the result for people.
func printSoak(w io.Writer, r *soakResult) {
	printBench(w, r.benchResult)
	fmt.Fprintf(w, "churn      %d members replaced, one every %gs\n", r.Churns, r.ChurnSeconds)
	for _, g := range r.PerGroup {
		fmt.Fprintf(w, "group      %s: received %d, duplicates %d, lost %d\n", g.Group, g.Received, g.Duplicates, g.Lost)
	}
	fmt.Fprintf(w, "lost       %d\n", r.Lost)
	row := func(what string, rss int64, gor int, inuse, live int64) {
		fmt.Fprintf(w, "%-10s rss %s, goroutines %d, heap in use %s, live %s\n", what, mib(rss), gor, mib(inuse), mib(live))
	}
	row("start", r.Start.RSS, r.Start.Goroutines, r.Start.HeapInuse, r.Start.HeapLive)
	row("end", r.End.RSS, r.End.Goroutines, r.End.HeapInuse, r.End.HeapLive)
	row("max", r.Max.RSS, r.Max.Goroutines, r.Max.HeapInuse, r.Max.HeapLive)
	fmt.Fprintf(w, "rss from   %s\n", r.RSSSource)
	fmt.Fprintf(w, "verdict    %s\n", r.Verdict)
	for _, why := range r.Why {
		fmt.Fprintf(w, "           %s\n", why)
	}
}
