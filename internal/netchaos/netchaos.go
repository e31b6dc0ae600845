// Package netchaos runs issue 15's case 3, "cut and slow networks", on any
// transport: a client whose every connection goes through a
// faultproxy.Proxy publishes and consumes continuously while the network
// is cut and refused, then restored, then slow, then narrow. Each
// transport's reliability test (build tag reliability) calls Run with a
// client opened through the proxy:
//
//	go test -race -tags reliability -run TestNetworkFaults ./transport/rabbitmq ./transport/nats ./transport/gcppubsub
//
// Run checks: every Publish that returned nil was received by every group
// (lost == 0); no Publish that started during the outage returned nil
// before the network was back; the subscriptions resume by themselves (the
// test never subscribes again); Ping reports the outage within
// Config.PingDetect and reports ready again within Config.PingRecover of
// the restore. It returns the figures for RELIABILITY.md and logs them.
package netchaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard-go/switchyard/internal/faultproxy"
	"github.com/switchyard-go/switchyard/pubsub"
)

// Client is what Run needs of a broker: *pubsub.Client has it.
type Client interface {
	pubsub.Publisher
	pubsub.Subscriber
	pubsub.Pinger
}

// Config describes one run. Zero durations take the defaults noted.
type Config struct {
	Proxy  *faultproxy.Proxy // every connection of Client goes through it
	Client Client
	Topic  string
	Groups []string // default {"g1", "g2"}

	Publishers     int           // concurrent publishers; default 2
	Interval       time.Duration // pause between one publisher's calls; default 10ms
	PublishTimeout time.Duration // each Publish call's context; default 5s
	PayloadBytes   int           // default 256

	Baseline   int           // messages each group receives before the faults; default 200
	Outage     time.Duration // connections cut and refused; default 10s
	Latency    time.Duration // added each way in the slow phase; default 200ms
	SlowFor    time.Duration // length of the slow phase; default 10s
	NarrowFor  time.Duration // length of the half-bandwidth phase; default 10s
	DrainLimit time.Duration // bound on receiving every confirmed message at the end; default 90s

	// PingDetect is the time within which Ping must fail after the cut,
	// and PingRecover the time within which it must succeed again after
	// the restore: what the transport documents.
	PingDetect, PingRecover time.Duration
	// PingTimeout bounds each Ping call; default 1s.
	PingTimeout time.Duration
}

func (c *Config) defaults() {
	if len(c.Groups) == 0 {
		c.Groups = []string{"g1", "g2"}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Publishers == 0 {
		c.Publishers = 2
	}
	if c.PayloadBytes == 0 {
		c.PayloadBytes = 256
	}
	if c.Baseline == 0 {
		c.Baseline = 200
	}
	def(&c.Interval, 10*time.Millisecond)
	def(&c.PublishTimeout, 5*time.Second)
	def(&c.Outage, 10*time.Second)
	def(&c.Latency, 200*time.Millisecond)
	def(&c.SlowFor, 10*time.Second)
	def(&c.NarrowFor, 10*time.Second)
	def(&c.DrainLimit, 90*time.Second)
	def(&c.PingTimeout, time.Second)
}

// Phase is what happened during one phase.
type Phase struct {
	Name      string
	Took      time.Duration
	Confirmed int    // Publish calls started in the phase that returned nil
	Failed    int    // Publish calls started in the phase that returned an error
	Received  int    // deliveries in the phase, all groups
	PingFails int    // Ping calls that failed during the phase
	PingErr   string // the first of their errors
}

// Result holds a run's figures.
type Result struct {
	Phases      []Phase
	Confirmed   int            // Publish calls that returned nil (one message each)
	Failed      int            // Publish calls that returned an error
	Received    map[string]int // distinct confirmed IDs received, per group
	Lost        map[string]int // confirmed IDs never received, per group
	Duplicates  map[string]int // deliveries beyond the first, per group
	Unconfirmed map[string]int // IDs received whose Publish had failed, per group
	// OutageFailed: publishes started during the outage that failed (the
	// others blocked until the restore and then succeeded).
	OutageFailed int
	// PingDetect: from the cut to the first failed Ping; PingRecover:
	// from the restore to the first Ping that succeeded after it.
	PingDetect, PingRecover time.Duration
	// Recover: from the restore to the first delivery after it.
	Recover time.Duration
	// Bandwidth set in the narrow phase (bytes/s per direction and
	// connection), half the busiest direction's rate in the baseline.
	Bandwidth int
}

// String renders the result as one line per phase and a summary.
func (r Result) String() string {
	s := ""
	for _, p := range r.Phases {
		s += fmt.Sprintf("  %-9s %6.1fs confirmed=%d failed=%d received=%d pingFails=%d",
			p.Name, p.Took.Seconds(), p.Confirmed, p.Failed, p.Received, p.PingFails)
		if p.PingErr != "" {
			s += fmt.Sprintf(" (first: %s)", p.PingErr)
		}
		s += "\n"
	}
	s += fmt.Sprintf("  total confirmed=%d failed=%d received=%v lost=%v duplicates=%v unconfirmedReceived=%v\n",
		r.Confirmed, r.Failed, r.Received, r.Lost, r.Duplicates, r.Unconfirmed)
	s += fmt.Sprintf("  outage: publishes failed=%d; ping detected the cut after %v, ready %v after restore; first delivery %v after restore; narrow bandwidth %d B/s",
		r.OutageFailed, r.PingDetect.Round(time.Millisecond), r.PingRecover.Round(time.Millisecond), r.Recover.Round(time.Millisecond), r.Bandwidth)
	return s
}

// event is one thing that happened at a time.
type event struct {
	at  time.Time
	ok  bool
	err string
}

// run holds the state of a run.
type run struct {
	cfg Config

	mu        sync.Mutex
	published map[string]bool // ID -> Publish returned nil
	pubStart  map[string]time.Time
	pubEnd    map[string]time.Time
	got       map[string]map[string]int // group -> ID -> deliveries
	deliv     []time.Time               // every delivery
	pings     []event
	changed   chan struct{}

	stop atomic.Bool
}

func (r *run) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitUntil waits until cond (called under r.mu) holds, or fails t after
// limit.
func (r *run) waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("netchaos: %s: not within %v", what, limit)
		}
	}
}

// Run runs the scenario and returns its figures.
func Run(t *testing.T, cfg Config) Result {
	t.Helper()
	cfg.defaults()
	require.NotNil(t, cfg.Proxy)
	r := &run{
		cfg:       cfg,
		published: map[string]bool{},
		pubStart:  map[string]time.Time{},
		pubEnd:    map[string]time.Time{},
		got:       map[string]map[string]int{},
		changed:   make(chan struct{}, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, g := range cfg.Groups {
		r.got[g] = map[string]int{}
		sub, err := cfg.Client.Subscribe(ctx, cfg.Topic, g, r.handler(g), pubsub.WithConcurrency(8))
		require.NoError(t, err, "subscribe %s", g)
		t.Cleanup(func() { _ = sub.Close() })
	}
	var wg sync.WaitGroup
	for p := range cfg.Publishers {
		wg.Add(1)
		go func() { defer wg.Done(); r.publish(ctx, p) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.ping(ctx) }()
	defer func() { r.stop.Store(true); cancel(); wg.Wait() }()

	var res Result
	var phases []time.Time // phase boundaries
	mark := func() time.Time { now := time.Now(); phases = append(phases, now); return now }

	// Baseline: every group received Baseline messages.
	mark()
	st0 := cfg.Proxy.Stats()
	r.waitUntil(t, 60*time.Second, "baseline deliveries", func() bool {
		for _, g := range cfg.Groups {
			if len(r.got[g]) < cfg.Baseline {
				return false
			}
		}
		return true
	})

	// Outage: cut every connection and refuse new ones.
	cfg.Proxy.SetDown(true)
	cfg.Proxy.Cut()
	cut := mark()
	st1 := cfg.Proxy.Stats()
	baseSecs := cut.Sub(phases[0]).Seconds()
	busiest := max(st1.ToTarget-st0.ToTarget, st1.ToClient-st0.ToClient)
	res.Bandwidth = max(int(float64(busiest)/baseSecs/2), 1024)
	r.waitUntil(t, cfg.PingDetect+cfg.PingTimeout+time.Second, "Ping reports the outage", func() bool {
		return r.firstPing(cut, false) != nil
	})
	<-time.After(time.Until(cut.Add(cfg.Outage))) // the outage's length is the fault itself

	// Restore, and wait until Ping is ready and a message was delivered.
	cfg.Proxy.SetDown(false)
	restore := mark()
	r.waitUntil(t, cfg.PingRecover+cfg.PingTimeout+time.Second, "Ping ready after the restore", func() bool {
		return r.firstPing(restore, true) != nil
	})
	r.waitUntil(t, 60*time.Second, "a delivery after the restore", func() bool {
		return len(r.deliv) > 0 && r.deliv[len(r.deliv)-1].After(restore)
	})

	// Slow: latency each way.
	cfg.Proxy.SetLatency(cfg.Latency)
	slow := mark()
	<-time.After(time.Until(slow.Add(cfg.SlowFor)))

	// Narrow: half the baseline's throughput.
	cfg.Proxy.SetLatency(0)
	cfg.Proxy.SetBandwidth(res.Bandwidth)
	narrow := mark()
	<-time.After(time.Until(narrow.Add(cfg.NarrowFor)))

	// Restore everything, stop publishing, and drain.
	cfg.Proxy.Reset()
	mark()
	r.stop.Store(true)
	r.waitUntil(t, cfg.PublishTimeout+30*time.Second, "publishers stopped", func() bool {
		return len(r.pubEnd) == len(r.pubStart)
	})
	mark()
	r.waitUntil(t, cfg.DrainLimit, "every confirmed message received by every group", func() bool {
		for _, g := range cfg.Groups {
			for id, ok := range r.published {
				if ok && r.got[g][id] == 0 {
					return false
				}
			}
		}
		return true
	})
	mark()

	r.mu.Lock()
	defer r.mu.Unlock()
	names := []string{"baseline", "outage", "recover", "slow", "narrow", "stopping", "drain"}
	for i, name := range names {
		from, to := phases[i], phases[i+1]
		ph := Phase{Name: name, Took: to.Sub(from)}
		for id, s := range r.pubStart {
			if !s.Before(from) && s.Before(to) {
				if r.published[id] {
					ph.Confirmed++
				} else {
					ph.Failed++
				}
			}
		}
		for _, d := range r.deliv {
			if !d.Before(from) && d.Before(to) {
				ph.Received++
			}
		}
		for _, p := range r.pings {
			if !p.ok && !p.at.Before(from) && p.at.Before(to) {
				if ph.PingFails == 0 {
					ph.PingErr = p.err
				}
				ph.PingFails++
			}
		}
		res.Phases = append(res.Phases, ph)
	}
	res.Received, res.Lost, res.Duplicates, res.Unconfirmed = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for _, ok := range r.published {
		if ok {
			res.Confirmed++
		} else {
			res.Failed++
		}
	}
	for _, g := range cfg.Groups {
		for id, n := range r.got[g] {
			if r.published[id] {
				res.Received[g]++
			} else {
				res.Unconfirmed[g]++
			}
			res.Duplicates[g] += n - 1
		}
		res.Lost[g] = res.Confirmed - res.Received[g]
	}
	// Publishes started during the outage: none may have returned nil
	// before the restore.
	for id, s := range r.pubStart {
		if s.Before(cut) || !s.Before(restore) {
			continue
		}
		if !r.published[id] {
			res.OutageFailed++
		} else {
			assert.False(t, r.pubEnd[id].Before(restore), "Publish of %s started during the outage and returned nil before the restore", id)
		}
	}
	res.PingDetect = r.firstPing(cut, false).Sub(cut)
	res.PingRecover = r.firstPing(restore, true).Sub(restore)
	for _, d := range r.deliv {
		if d.After(restore) {
			res.Recover = d.Sub(restore)
			break
		}
	}

	for _, g := range cfg.Groups {
		assert.Zero(t, res.Lost[g], "group %s lost confirmed messages", g)
	}
	assert.LessOrEqual(t, res.PingDetect, cfg.PingDetect, "Ping reports the outage within the documented time")
	assert.LessOrEqual(t, res.PingRecover, cfg.PingRecover, "Ping reports ready within the documented time after the restore")
	assert.Positive(t, res.Phases[3].Confirmed, "publishes succeed while slow")
	assert.Positive(t, res.Phases[3].Received, "deliveries go on while slow")
	assert.Positive(t, res.Phases[4].Confirmed, "publishes succeed while narrow")
	assert.Positive(t, res.Phases[4].Received, "deliveries go on while narrow")
	t.Logf("netchaos on %s:\n%s", cfg.Topic, res)
	return res
}

// firstPing returns the time of the first Ping result with outcome ok at
// or after from, or nil. r.mu is held.
func (r *run) firstPing(from time.Time, ok bool) *time.Time {
	for _, p := range r.pings {
		if !p.at.Before(from) && p.ok == ok {
			return &p.at
		}
	}
	return nil
}

func (r *run) handler(group string) pubsub.Handler {
	return func(_ context.Context, m *pubsub.Message) error {
		r.mu.Lock()
		r.got[group][m.ID]++
		r.deliv = append(r.deliv, time.Now())
		r.mu.Unlock()
		r.notify()
		return nil
	}
}

// publish publishes one message at a time until stopped.
func (r *run) publish(ctx context.Context, n int) {
	payload := make([]byte, r.cfg.PayloadBytes)
	ticker := time.NewTicker(r.cfg.Interval) // the load's rate
	defer ticker.Stop()
	for seq := 0; !r.stop.Load(); seq++ {
		id := fmt.Sprintf("p%d-%06d", n, seq)
		r.mu.Lock()
		r.pubStart[id] = time.Now()
		r.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		err := r.cfg.Client.Publish(pctx, r.cfg.Topic, &pubsub.Message{ID: id, Payload: payload})
		cancel()
		r.mu.Lock()
		r.pubEnd[id] = time.Now()
		r.published[id] = err == nil
		r.mu.Unlock()
		r.notify()
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

// ping records Ping's outcome every 20ms.
func (r *run) ping(ctx context.Context) {
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PingTimeout)
		err := r.cfg.Client.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		e := event{at: time.Now(), ok: err == nil}
		if err != nil {
			e.err = err.Error()
		}
		r.pings = append(r.pings, e)
		r.mu.Unlock()
		r.notify()
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}
