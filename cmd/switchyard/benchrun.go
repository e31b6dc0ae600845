package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/switchyard-go/switchyard/pubsub"
)

// benchConfig is one load: what bench's flags describe.
type benchConfig struct {
	Topic       string        `json:"topic"`
	Rate        float64       `json:"rate"` // messages per second over all publishers; 0: as fast as they go
	Size        int           `json:"size"` // payload bytes
	Publishers  int           `json:"publishers"`
	Consumers   int           `json:"consumers"` // subscriptions per group
	Groups      int           `json:"groups"`
	Concurrency int           `json:"concurrency"` // handlers per subscription
	Confirm     int           `json:"confirm"`     // messages per Publish call
	Duration    time.Duration `json:"-"`
	Count       int64         `json:"count,omitempty"` // when > 0, publish this many instead of for Duration
	Drain       time.Duration `json:"-"`
	// Churn, when positive, replaces one member every Churn while
	// publishing: the next subscription in turn closes (Close, gracefully)
	// and a new one subscribes to its group.
	Churn time.Duration `json:"-"`
}

// headerSize is the bench header at the start of each payload: the run's
// tag, the message's sequence number, and its send time.
const headerSize = 24

// benchResult is what one load measured.
type benchResult struct {
	URL       string `json:"url"`       // redacted
	Transport string `json:"transport"` // the URL's scheme
	// Emulator is the Pub/Sub emulator (PUBSUB_EMULATOR_HOST) a gcppubsub
	// run talked to, instead of Google's service.
	Emulator string `json:"emulator,omitempty"`
	benchConfig
	DurationSeconds float64 `json:"duration_s,omitempty"`

	Published  int64 `json:"published"`  // messages the broker accepted
	Received   int64 `json:"received"`   // distinct messages handled, summed over the groups
	Duplicates int64 `json:"duplicates"` // deliveries of a message a group had handled already
	Missing    int64 `json:"missing"`    // published × groups − received, after the drain
	Foreign    int64 `json:"foreign,omitempty"`
	// PerGroup tallies each group; Lost counts confirmed messages the
	// group never received.
	PerGroup []groupTally `json:"per_group"`
	// Churns is how many members were replaced (see benchConfig.Churn).
	Churns int64 `json:"churns,omitempty"`

	PublishSeconds float64 `json:"publish_s"`    // from the first publish to the last accepted
	ElapsedSeconds float64 `json:"elapsed_s"`    // from the first publish to the last message received
	PublishRate    float64 `json:"publish_rate"` // published / publish_s
	ReceiveRate    float64 `json:"receive_rate"` // received / elapsed_s

	Latency     latencySummary `json:"latency"`
	Interrupted bool           `json:"interrupted,omitempty"`
}

// groupTally is what one group received.
type groupTally struct {
	Group      string `json:"group"`
	Received   int64  `json:"received"`   // distinct messages handled
	Duplicates int64  `json:"duplicates"` // deliveries of a message the group had handled already
	Lost       int64  `json:"lost"`       // confirmed messages never handled
}

// latencySummary holds end-to-end latencies in nanoseconds, from the
// Publish call to the start of the handler, over every first delivery.
type latencySummary struct {
	Samples int64   `json:"samples"`
	Min     int64   `json:"min_ns"`
	Mean    float64 `json:"mean_ns"`
	P50     int64   `json:"p50_ns"`
	P90     int64   `json:"p90_ns"`
	P99     int64   `json:"p99_ns"`
	P999    int64   `json:"p99_9_ns"`
	Max     int64   `json:"max_ns"`
}

// benchRun is one load in progress.
type benchRun struct {
	b      broker
	cfg    benchConfig
	tag    uint64
	start  time.Time
	groups []*benchGroup
	rec    *recorder

	reserved  atomic.Int64 // sequence numbers handed to publishers
	published atomic.Int64
	confirmed seqSet       // the sequence numbers whose Publish returned nil
	target    atomic.Int64 // what each group must receive; set once publishing ended
}

// benchGroup is one group's tally.
type benchGroup struct {
	r          *benchRun
	name       string
	seen       seqSet
	unique     atomic.Int64
	duplicates atomic.Int64
	foreign    atomic.Int64
	doneOnce   sync.Once
	done       chan struct{}
	doneAt     atomic.Int64 // nanoseconds from start when the group had everything
}

// runBench runs one load on b and returns what it measured. onTick, if not
// nil, is called about five times a second with the messages published and
// received so far. Cancelling ctx stops the load; the result is then marked
// interrupted. The groups it creates are deleted before it returns.
func runBench(ctx context.Context, b broker, cfg benchConfig, timeout time.Duration, onTick func(published, received int64, draining bool)) (res *benchResult, err error) {
	r := &benchRun{b: b, cfg: cfg, tag: rand.Uint64(), rec: newRecorder()}
	r.target.Store(1<<63 - 1)
	prefix := fmt.Sprintf("bench-%08x", uint32(r.tag))
	for i := range cfg.Groups {
		r.groups = append(r.groups, &benchGroup{r: r, name: fmt.Sprintf("%s-%d", prefix, i), done: make(chan struct{})})
	}
	cleanupCtx := context.WithoutCancel(ctx)
	defer func() {
		for _, g := range r.groups {
			dctx, cancel := context.WithTimeout(cleanupCtx, timeout)
			derr := b.DeleteGroup(dctx, cfg.Topic, g.name)
			cancel()
			if derr != nil && !errors.Is(derr, pubsub.ErrNotFound) {
				err = errors.Join(err, fmt.Errorf("delete bench group %s: %w", g.name, derr))
			}
		}
	}()
	for _, g := range r.groups {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := b.CreateGroup(cctx, cfg.Topic, g.name)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("create bench group %s of %s: %w", g.name, cfg.Topic, err)
		}
	}
	m := &members{b: b, ctx: context.WithoutCancel(ctx), topic: cfg.Topic, concurrency: cfg.Concurrency}
	defer func() { err = errors.Join(err, m.closeAll()) }()
	for _, g := range r.groups {
		for range cfg.Consumers {
			if err := m.join(g); err != nil {
				return nil, err
			}
		}
	}

	// Publish.
	r.start = time.Now()
	pubErrs := make(chan error, cfg.Publishers)
	var pubs sync.WaitGroup
	for range cfg.Publishers {
		pubs.Go(func() { pubErrs <- r.publish(ctx) })
	}
	published := make(chan struct{})
	go func() { pubs.Wait(); close(published) }()
	churned := make(chan error, 1)
	go func() { churned <- m.churnEvery(cfg.Churn, published) }()
	defer func() {
		if cerr := <-churned; cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	report := func(draining bool) {
		if onTick != nil {
			onTick(r.published.Load(), r.received(), draining)
		}
	}
wait:
	for {
		select {
		case <-published:
			break wait
		case <-tick.C:
			report(false)
		}
	}
	publishEnd := time.Since(r.start)
	close(pubErrs)
	for e := range pubErrs {
		if e != nil {
			return nil, e
		}
	}

	// Drain: wait until every group has every message, or the drain time.
	n := r.published.Load()
	r.target.Store(n)
	for _, g := range r.groups {
		if g.unique.Load() >= n {
			g.complete()
		}
	}
	drainEnd := time.NewTimer(cfg.Drain)
	defer drainEnd.Stop()
	interrupted := ctx.Err() != nil
	timedOut := false
	for _, g := range r.groups {
		if interrupted || timedOut {
			break
		}
	drain:
		for {
			select {
			case <-g.done:
				break drain
			case <-tick.C:
				report(true)
			case <-drainEnd.C:
				timedOut = true
				break drain
			case <-ctx.Done():
				interrupted = true
				break drain
			}
		}
	}
	report(true)
	elapsed := time.Since(r.start)
	if !interrupted && !timedOut {
		elapsed = 0
		for _, g := range r.groups {
			elapsed = max(elapsed, time.Duration(g.doneAt.Load()))
		}
	}
	res = r.result(publishEnd, elapsed, interrupted)
	res.Churns = m.churns.Load()
	return res, nil
}

// publish is one publisher: it sends batches of cfg.Confirm messages, each
// Publish waiting for the broker's confirmation, on the rate's schedule,
// until the count or duration is reached or ctx ends.
func (r *benchRun) publish(ctx context.Context) error {
	cfg := r.cfg
	batch := cfg.Confirm
	msgs := make([]*pubsub.Message, batch)
	for i := range msgs {
		msgs[i] = &pubsub.Message{Payload: make([]byte, cfg.Size)}
	}
	var timer *time.Timer
	for ctx.Err() == nil {
		if cfg.Count == 0 && time.Since(r.start) >= cfg.Duration {
			return nil
		}
		base := r.reserved.Add(int64(batch)) - int64(batch)
		n := int64(batch)
		if cfg.Count > 0 {
			if base >= cfg.Count {
				return nil
			}
			n = min(n, cfg.Count-base)
		}
		if cfg.Rate > 0 {
			due := r.start.Add(time.Duration(float64(base) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return nil
				}
			}
		}
		sent := time.Since(r.start)
		for i := range n {
			m := msgs[i]
			m.ID, m.Metadata = "", nil
			binary.LittleEndian.PutUint64(m.Payload[0:], r.tag)
			binary.LittleEndian.PutUint64(m.Payload[8:], uint64(base+i))
			binary.LittleEndian.PutUint64(m.Payload[16:], uint64(sent))
		}
		if err := r.b.Publish(ctx, cfg.Topic, msgs[:n]...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publish to %s after %d messages: %w", cfg.Topic, r.published.Load(), err)
		}
		for i := range n {
			r.confirmed.add(uint64(base + i))
		}
		r.published.Add(n)
	}
	return nil
}

// handle tallies one delivery: its latency on the first delivery to the
// group, a duplicate otherwise. Messages of other runs on the same topic
// are acked and counted apart.
func (g *benchGroup) handle(_ context.Context, m *pubsub.Message) error {
	now := int64(time.Since(g.r.start))
	p := m.Payload
	if len(p) < headerSize || binary.LittleEndian.Uint64(p) != g.r.tag {
		g.foreign.Add(1)
		return nil
	}
	seq := binary.LittleEndian.Uint64(p[8:])
	sent := int64(binary.LittleEndian.Uint64(p[16:]))
	if !g.seen.add(seq) {
		g.duplicates.Add(1)
		return nil
	}
	g.r.rec.record(now - sent)
	if g.unique.Add(1) >= g.r.target.Load() {
		g.complete()
	}
	return nil
}

// complete marks the group as having received everything.
func (g *benchGroup) complete() {
	g.doneOnce.Do(func() {
		g.doneAt.Store(int64(time.Since(g.r.start)))
		close(g.done)
	})
}

// received is the distinct messages handled so far, over the groups.
func (r *benchRun) received() int64 {
	var n int64
	for _, g := range r.groups {
		n += g.unique.Load()
	}
	return n
}

// result sums the run up.
func (r *benchRun) result(publishTime, elapsed time.Duration, interrupted bool) *benchResult {
	res := &benchResult{benchConfig: r.cfg, Published: r.published.Load(), Interrupted: interrupted}
	if r.cfg.Count == 0 {
		res.DurationSeconds = r.cfg.Duration.Seconds()
	}
	for _, g := range r.groups {
		t := groupTally{Group: g.name, Received: g.unique.Load(), Duplicates: g.duplicates.Load(), Lost: r.confirmed.missingFrom(&g.seen)}
		res.PerGroup = append(res.PerGroup, t)
		res.Received += t.Received
		res.Duplicates += t.Duplicates
		res.Foreign += g.foreign.Load()
	}
	res.Missing = res.Published*int64(len(r.groups)) - res.Received
	res.PublishSeconds = publishTime.Seconds()
	res.ElapsedSeconds = elapsed.Seconds()
	if publishTime > 0 {
		res.PublishRate = float64(res.Published) / publishTime.Seconds()
	}
	if elapsed > 0 {
		res.ReceiveRate = float64(res.Received) / elapsed.Seconds()
	}
	res.Latency = r.rec.summary()
	return res
}

// recorder is an HDR histogram of latencies, sharded so that concurrent
// handlers rarely wait for each other.
type recorder struct {
	next   atomic.Uint32
	shards [8]recorderShard
}

type recorderShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	_  [40]byte // keep shards on separate cache lines
}

// Histogram range: 1ns to one hour, three significant digits.
const (
	histMin = 1
	histMax = int64(time.Hour)
)

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.shards {
		r.shards[i].h = hdrhistogram.New(histMin, histMax, 3)
	}
	return r
}

// record adds one latency, clamped to the histogram's range.
func (r *recorder) record(ns int64) {
	ns = min(max(ns, 0), histMax)
	s := &r.shards[r.next.Add(1)%uint32(len(r.shards))]
	s.mu.Lock()
	_ = s.h.RecordValue(ns) // in range: cannot fail
	s.mu.Unlock()
}

// summary merges the shards and reads the percentiles.
func (r *recorder) summary() latencySummary {
	all := hdrhistogram.New(histMin, histMax, 3)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		all.Merge(s.h)
		s.mu.Unlock()
	}
	if all.TotalCount() == 0 {
		return latencySummary{}
	}
	return latencySummary{
		Samples: all.TotalCount(),
		Min:     all.Min(),
		Mean:    all.Mean(),
		P50:     all.ValueAtPercentile(50),
		P90:     all.ValueAtPercentile(90),
		P99:     all.ValueAtPercentile(99),
		P999:    all.ValueAtPercentile(99.9),
		Max:     all.Max(),
	}
}

// seqSet is a lock-free set of sequence numbers below 2^32, in chunks of
// 2^16 bits allocated on first use.
type seqSet struct {
	chunks [1 << 16]atomic.Pointer[[1 << 10]atomic.Uint64]
}

// add puts seq in the set and reports whether it was not there yet.
// Numbers past the set's range always count as new.
func (s *seqSet) add(seq uint64) bool {
	ci := seq >> 16
	if ci >= uint64(len(s.chunks)) {
		return true
	}
	c := s.chunks[ci].Load()
	if c == nil {
		fresh := new([1 << 10]atomic.Uint64)
		if s.chunks[ci].CompareAndSwap(nil, fresh) {
			c = fresh
		} else {
			c = s.chunks[ci].Load()
		}
	}
	bit := uint64(1) << (seq & 63)
	return c[(seq>>6)&(1<<10-1)].Or(bit)&bit == 0
}

// missingFrom counts the numbers in s that are not in other.
func (s *seqSet) missingFrom(other *seqSet) int64 {
	var n int64
	for ci := range s.chunks {
		c := s.chunks[ci].Load()
		if c == nil {
			continue
		}
		o := other.chunks[ci].Load()
		for wi := range c {
			w := c[wi].Load()
			if o != nil {
				w &^= o[wi].Load()
			}
			n += int64(bits.OnesCount64(w))
		}
	}
	return n
}
