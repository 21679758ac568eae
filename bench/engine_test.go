package bench

import (
	"fmt"

	"github.com/HdrHistogram/hdrhistogram-go"
	"os"
	"sync"
	"testing"

	"github.com/mqd/mqd/engine"
)

// Benchmarks of the engine's append path: 1 KiB records, SYNC_FLUSH with
// 1/16/64/256 concurrent writers and ASYNC_FLUSH, on each I/O backend.
// Run: go test -bench . -benchtime 100000x ./bench  (see BENCHMARKS.md).
// MQD_BENCH_DIR chooses the store's file system (default: the test's temp dir).

var stores sync.Map // name → *engine.Store, kept across b.N rounds

func benchStore(b *testing.B, name string, cfg engine.Config) *engine.Store {
	if s, ok := stores.Load(name); ok {
		return s.(*engine.Store)
	}
	dir := os.Getenv("MQD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	cfg.Dir = dir
	s, err := engine.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	stores.Store(name, s)
	b.Cleanup(func() {
		stores.Delete(name)
		s.Close()
		os.RemoveAll(dir)
	})
	return s
}

func backendsToBench() []string {
	if b := os.Getenv("MQD_BENCH_BACKENDS"); b != "" {
		return []string{b}
	}
	return []string{"io_uring", "pwrite"}
}

func BenchmarkAppendSync(b *testing.B) {
	for _, be := range backendsToBench() {
		for _, writers := range []int{1, 16, 64, 256} {
			name := fmt.Sprintf("%s/writers=%d", be, writers)
			b.Run(name, func(b *testing.B) {
				s := benchStore(b, "sync/"+name, engine.Config{FlushDiskType: engine.SyncFlush, IOBackend: be})
				runAppend(b, s, writers)
			})
		}
	}
}

// BenchmarkSyncAlternatives compares write paths under SYNC_FLUSH:
// O_DIRECT or buffered writes, through io_uring or pwrite.
func BenchmarkSyncAlternatives(b *testing.B) {
	for _, be := range []string{"io_uring", "pwrite"} {
		for _, buffered := range []bool{false, true} {
			for _, writers := range []int{1, 256} {
				mode := "direct"
				if buffered {
					mode = "buffered"
				}
				name := fmt.Sprintf("%s-%s/writers=%d", be, mode, writers)
				b.Run(name, func(b *testing.B) {
					s := benchStore(b, "alt/"+name, engine.Config{FlushDiskType: engine.SyncFlush, IOBackend: be, BufferedIO: buffered})
					runAppend(b, s, writers)
				})
			}
		}
	}
}

// BenchmarkAppendAsync is the ASYNC_FLUSH append path alone: 4 writers
// with WAIT=false, acknowledged once the record is in the log's memory
// (issue 14's "ASYNC ≥ 1M records/s"). BenchmarkAppendAsyncWritten is
// ASYNC_FLUSH's default acknowledgement, once the record is written (it
// survives a crash of the process), from 256 writers.
func BenchmarkAppendAsync(b *testing.B) {
	for _, be := range backendsToBench() {
		name := fmt.Sprintf("%s/writers=4", be)
		b.Run(name, func(b *testing.B) {
			s := benchStore(b, "async/"+name, engine.Config{FlushDiskType: engine.AsyncFlush, IOBackend: be})
			runAppendWait(b, s, 4, false)
		})
	}
}

func BenchmarkAppendAsyncWritten(b *testing.B) {
	for _, be := range backendsToBench() {
		name := fmt.Sprintf("%s/writers=256", be)
		b.Run(name, func(b *testing.B) {
			s := benchStore(b, "asyncw/"+name, engine.Config{FlushDiskType: engine.AsyncFlush, IOBackend: be})
			runAppend(b, s, 256)
		})
	}
}

type latencies struct{ h *hdrhistogram.Histogram }

func itoa(i int) string { return fmt.Sprint(i) }

func runAppend(b *testing.B, s *engine.Store, writers int) { runAppendWait(b, s, writers, true) }

func runAppendWait(b *testing.B, s *engine.Store, writers int, wait bool) {
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	r := AppendWait(s, writers, b.N, 1024, wait)
	b.StopTimer()
	if r.Errors > 0 {
		b.Fatalf("%d appends failed", r.Errors)
	}
	b.ReportMetric(r.RecordsPerSec(), "records/s")
	b.ReportMetric(float64(r.Latency.ValueAtQuantile(50)), "p50-µs")
	b.ReportMetric(float64(r.Latency.ValueAtQuantile(99)), "p99-µs")
}
