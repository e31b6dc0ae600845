package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"
)

// soakSample is the process's resources at one moment of a soak, with the
// load's progress.
type soakSample struct {
	ElapsedSeconds float64 `json:"elapsed_s"`
	Published      int64   `json:"published"`
	Received       int64   `json:"received"` // distinct messages handled, summed over the groups
	RSS            int64   `json:"rss_bytes"`
	Goroutines     int     `json:"goroutines"`
	HeapInuse      int64   `json:"heap_inuse_bytes"` // heap spans in use (runtime.MemStats.HeapInuse)
	HeapLive       int64   `json:"heap_live_bytes"`  // heap marked live by the last GC
}

// soakMax is the highest value of each resource over a soak's samples.
type soakMax struct {
	RSS        int64 `json:"rss_bytes"`
	Goroutines int   `json:"goroutines"`
	HeapInuse  int64 `json:"heap_inuse_bytes"`
	HeapLive   int64 `json:"heap_live_bytes"`
}

// RSS sources, as the record names them.
const (
	rssProc    = "/proc/self/status VmRSS"
	rssMetrics = "runtime/metrics: memory mapped by the Go runtime and not released (/proc is missing: not the OS's RSS)"
)

var soakMetrics = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/gc/heap/live:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

// sampleResources reads this process's resources into s and returns where
// the RSS came from. It is not safe for concurrent use (it reuses
// soakMetrics); the soak calls it from one goroutine at a time.
func sampleResources(s *soakSample) (rssSource string) {
	metrics.Read(soakMetrics)
	u := func(i int) int64 {
		if soakMetrics[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(soakMetrics[i].Value.Uint64())
	}
	s.HeapInuse = u(0) + u(1)
	s.HeapLive = u(2)
	s.Goroutines = runtime.NumGoroutine()
	if rss, ok := procRSS(); ok {
		s.RSS = rss
		return rssProc
	}
	s.RSS = u(3) - u(4)
	return rssMetrics
}

// procRSS reads VmRSS from /proc/self/status.
func procRSS() (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

// maxOf returns the highest value of each resource over samples.
func maxOf(samples ...soakSample) soakMax {
	var m soakMax
	for _, s := range samples {
		m.RSS = max(m.RSS, s.RSS)
		m.Goroutines = max(m.Goroutines, s.Goroutines)
		m.HeapInuse = max(m.HeapInuse, s.HeapInuse)
		m.HeapLive = max(m.HeapLive, s.HeapLive)
	}
	return m
}

// The verdict's rule (documented in soakLong): samples of the first tenth
// of the run are warm-up (connections, buffers and the GC's pacing
// settle) and left out; the rest, up to the end of publishing, are cut in
// two halves by time, and a resource is growing when the median of the
// second half exceeds the median of the first by more than 10% AND by
// more than an absolute floor (below), so that neither noise on a small
// figure nor a few percent on a large one counts. It judges RSS, the live
// heap (what the last GC kept: leaked objects stay in it) and goroutines.
// With fewer than minJudged samples after warm-up, or a run shorter than
// minJudgedRun, the verdict is undecided.
const (
	growthRatio      = 0.10
	rssFloor         = 8 << 20 // bytes
	heapFloor        = 4 << 20 // bytes
	goroutineFloor   = 5
	minJudged        = 8
	minJudgedRun     = time.Minute
	verdictFlat      = "flat"
	verdictGrowing   = "growing"
	verdictUndecided = "undecided"
)

// judge applies the verdict's rule to the samples taken while publishing
// for the duration d. It returns the verdict and, for each resource that
// grew or the reason it could not decide, a line saying so.
func judge(samples []soakSample, d time.Duration) (string, []string) {
	warm := d.Seconds() / 10
	var judged []soakSample
	for _, s := range samples {
		if s.ElapsedSeconds >= warm && s.ElapsedSeconds <= d.Seconds() {
			judged = append(judged, s)
		}
	}
	if d < minJudgedRun || len(judged) < minJudged {
		return verdictUndecided, []string{fmt.Sprintf("%d samples after the warm-up in a %v run: the verdict needs %d and at least %v (lower --report or raise --duration)",
			len(judged), d, minJudged, minJudgedRun)}
	}
	mid := warm + (d.Seconds()-warm)/2
	var first, second []soakSample
	for _, s := range judged {
		if s.ElapsedSeconds < mid {
			first = append(first, s)
		} else {
			second = append(second, s)
		}
	}
	var growing []string
	check := func(what string, get func(soakSample) int64, floor int64, show func(int64) string) {
		a, b := median(first, get), median(second, get)
		if d := b - a; d > floor && float64(d) > growthRatio*float64(a) {
			growing = append(growing, fmt.Sprintf("%s: median %s in the first half, %s in the second", what, show(a), show(b)))
		}
	}
	check("rss", func(s soakSample) int64 { return s.RSS }, rssFloor, mib)
	check("heap live", func(s soakSample) int64 { return s.HeapLive }, heapFloor, mib)
	check("goroutines", func(s soakSample) int64 { return int64(s.Goroutines) }, goroutineFloor, func(v int64) string { return strconv.FormatInt(v, 10) })
	if len(growing) > 0 {
		return verdictGrowing, growing
	}
	return verdictFlat, nil
}

// median returns the median of get over samples (the lower middle one for
// an even count).
func median(samples []soakSample, get func(soakSample) int64) int64 {
	if len(samples) == 0 {
		return 0
	}
	v := make([]int64, len(samples))
	for i, s := range samples {
		v[i] = get(s)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

// mib renders bytes in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
