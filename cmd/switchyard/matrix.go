package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-go/switchyard/transport"
)

// matrixRecord is what a --matrix run writes to --out, and prints with
// --json: enough to reproduce it and to know where it ran.
type matrixRecord struct {
	Command  string         `json:"command"`
	Machine  string         `json:"machine"`
	Date     string         `json:"date"`
	Results  []*benchResult `json:"results"`
	Failures []matrixFail   `json:"failures,omitempty"`
}

// matrixFail is a broker URL and rate the matrix could not measure.
type matrixFail struct {
	URL   string  `json:"url"`
	Rate  float64 `json:"rate"`
	Error string  `json:"error"`
}

// parseRates reads --rates: numbers, or "max" for unbounded (0).
func parseRates(s string) ([]float64, error) {
	var rates []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "max" {
			rates = append(rates, 0)
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--rates: %q is not a positive rate or \"max\"", f)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// benchMatrix runs the load on each broker at each rate.
func (a *app) benchMatrix(o benchOptions, urls []string) error {
	rates, _ := parseRates(o.rates) // validated
	if len(urls) == 0 {
		urls = a.discoverBrokers()
	}
	rec := &matrixRecord{Command: a.commandLine(), Machine: machine(), Date: time.Now().UTC().Format(time.RFC3339)}
	for _, u := range urls {
		for _, rate := range rates {
			if a.ctx.Err() != nil {
				break
			}
			cfg := o.cfg
			cfg.Rate = rate
			fmt.Fprintf(a.stderr, "switchyard: bench %s at %s\n", showURL(u), rateText(rate))
			res, err := a.benchOne(u, cfg)
			if err == nil && res != nil {
				err = benchVerdict(res, cfg.Drain)
			}
			if res != nil && !res.Interrupted {
				rec.Results = append(rec.Results, res)
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(a.stderr, "switchyard: bench %s at %s: %s\n", showURL(u), rateText(rate), a.oneLine(err))
				rec.Failures = append(rec.Failures, matrixFail{URL: showURL(u), Rate: rate, Error: a.oneLine(err)})
			}
		}
	}
	if o.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rec); err != nil {
			return err
		}
	} else {
		printMatrix(a.stdout, rec)
	}
	if o.out != "" {
		data, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.chart != "" && len(rec.Results) > 0 {
		if err := writeChart(o.chart, rec); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Fprintf(a.stderr, "switchyard: chart written to %s\n", o.chart)
	}
	if a.ctx.Err() != nil {
		return a.ctx.Err()
	}
	if len(rec.Failures) > 0 {
		return fmt.Errorf("%d of %d runs failed (see above)", len(rec.Failures), len(urls)*len(rates))
	}
	return nil
}

// rateText names a rate.
func rateText(rate float64) string {
	if rate == 0 {
		return "max rate"
	}
	return fmt.Sprintf("%g msgs/s", rate)
}

// discoverBrokers returns mem:// and the brokers reachable here whose
// schemes this build knows, telling on stderr what it found.
func (a *app) discoverBrokers() []string {
	known := transport.Schemes()
	urls := []string{"mem://bench"}
	try := func(scheme, rawURL, addr, what string) {
		switch {
		case !slices.Contains(known, scheme):
			fmt.Fprintf(a.stderr, "switchyard: matrix: %s left out: this build has no %s:// transport\n", what, scheme)
		case addr == "":
			fmt.Fprintf(a.stderr, "switchyard: matrix: %s left out: not configured\n", what)
		case !reachable(addr):
			fmt.Fprintf(a.stderr, "switchyard: matrix: %s left out: nothing listens at %s\n", what, addr)
		default:
			urls = append(urls, rawURL)
		}
	}
	amqpURL := a.getenv("SWITCHYARD_AMQP_URL")
	if amqpURL == "" {
		amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if u, err := url.Parse(amqpURL); err == nil {
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "5672")
		}
		try("amqp", amqpURL, host, "RabbitMQ")
	}
	try("nats", "nats://127.0.0.1:4222", "127.0.0.1:4222", "NATS")
	try("gcppubsub", "gcppubsub://switchyard-bench", a.getenv("PUBSUB_EMULATOR_HOST"), "the Pub/Sub emulator (PUBSUB_EMULATOR_HOST)")
	return urls
}

// reachable reports whether addr accepts TCP connections within a second.
func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// commandLine is the invocation, passwords redacted, for the record.
func (a *app) commandLine() string {
	parts := []string{"switchyard"}
	for _, arg := range a.args {
		if strings.Contains(arg, "://") {
			if k, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(k, "-") {
				arg = k + "=" + showURL(v)
			} else {
				arg = showURL(arg)
			}
		}
		parts = append(parts, arg)
	}
	return strings.Join(parts, " ")
}

// machine describes this machine: CPU model, cores, memory, OS and Go.
func machine() string {
	cpu := firstValue("/proc/cpuinfo", "model name")
	if cpu == "" {
		cpu = runtime.GOARCH
	}
	desc := fmt.Sprintf("%s, %d CPUs", strings.Join(strings.Fields(cpu), " "), runtime.NumCPU())
	if kb, err := strconv.ParseInt(strings.TrimSuffix(firstValue("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		desc += fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	return desc + fmt.Sprintf(", %s/%s, %s", runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// firstValue returns the value of the first "key: value" line of a
// /proc file.
func firstValue(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// printMatrix prints the matrix as a table.
func printMatrix(w io.Writer, rec *matrixRecord) {
	fmt.Fprintf(w, "%s\n%s, %s\n\n", rec.Command, rec.Machine, rec.Date)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BROKER\tRATE\tPUBLISHED\tSENT/S\tRECEIVED/S\tP50\tP90\tP99\tP99.9\tMAX\tMISSING\tDUPLICATES")
	for _, r := range rec.Results {
		l := r.Latency
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.URL, rateText(r.Rate), r.Published,
			r.PublishRate, r.ReceiveRate, ns(l.P50), ns(l.P90), ns(l.P99), ns(l.P999), ns(l.Max), r.Missing, r.Duplicates)
	}
	_ = tw.Flush()
	for _, f := range rec.Failures {
		fmt.Fprintf(w, "failed: %s at %s: %s\n", f.URL, rateText(f.Rate), f.Error)
	}
}
