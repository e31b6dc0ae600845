package txstore_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/examples/txstore"
)

// The figures examples/README.md quotes come from these benchmarks, on
// SQLite (the default database), with the number of rows of
// SWITCHYARD_BENCH_ROWS (default 1,000,000):
//
//	go test -run '^$' -bench . -benchtime 1x ./examples/txstore
//
// BenchmarkSeed seeds that many rows into a new file; the Export
// benchmarks stream the whole year (every row) as CSV, once and three at
// once, reporting the peak Go heap while they run next to a baseline in
// the same process: the same rows read from the cursor without CSV.

func benchRows(b *testing.B) int {
	if s := os.Getenv("SWITCHYARD_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("SWITCHYARD_BENCH_ROWS: %v", err)
		}
		return n
	}
	return 1_000_000
}

var (
	seeded     sync.Once
	seededPath string
)

// seededStore returns a store holding benchRows seeded rows, made once per
// process.
func seededStore(b *testing.B) *txstore.Store {
	seeded.Do(func() {
		dir, err := os.MkdirTemp("", "txstore-bench-")
		if err != nil {
			b.Fatal(err)
		}
		seededPath = filepath.Join(dir, "bench.db")
		s, err := txstore.Open(context.Background(), "sqlite:"+seededPath)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Seed(context.Background(), benchRows(b), nil); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	})
	s, err := txstore.Open(context.Background(), "sqlite:"+seededPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkSeed(b *testing.B) {
	rows := benchRows(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := txstore.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "seed.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Seed(context.Background(), rows, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// heapPeak samples the Go heap every 5ms until stop, and returns its peak
// in MB.
func heapPeak() (stop func() float64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() float64 {
		close(done)
		wg.Wait()
		return float64(peak.Load()) / 1e6
	}
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func benchExport(b *testing.B, parallel int, csv bool) {
	s := seededStore(b)
	ctx := context.Background()
	var bytes atomic.Int64
	stop := heapPeak()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				var err error
				if csv {
					var c counter
					_, err = s.WriteCSV(ctx, &c, txstore.SeedStart, txstore.SeedEnd, 0, nil)
					bytes.Add(c.n)
				} else {
					err = s.EachTransaction(ctx, txstore.SeedStart, txstore.SeedEnd, func(*txstore.Transaction) error { return nil })
				}
				if err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(stop(), "peak-heap-MB")
	if csv {
		b.ReportMetric(float64(bytes.Load())/float64(b.N*parallel)/1e6, "MB/export")
	}
	b.ReportMetric(float64(benchRows(b)*parallel)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkExportYear(b *testing.B)         { benchExport(b, 1, true) }
func BenchmarkExportYearBaseline(b *testing.B) { benchExport(b, 1, false) }
func BenchmarkExportYear3AtOnce(b *testing.B)  { benchExport(b, 3, true) }

var _ io.Writer = (*counter)(nil)
