package mqd

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// BenchmarkEngine_bench holds the headline engine benchmarks: 1 KiB
// appends under SYNC_FLUSH (1 and 64 writers: one fsync per group-commit
// round) and ASYNC_FLUSH, and reads of just-written messages. Their
// sub-benchmark names contain "bench", so at the repository root both
// `go test -bench ./bench` (the pattern's second level matches sub-benchmark
// names) and `go test -bench bench` run them. The full suite, with both
// I/O backends and more writer counts, is `go test -bench . ./bench`
// (BENCHMARKS.md).
func BenchmarkEngine_bench(b *testing.B) {
	for _, w := range []int{1, 64} {
		b.Run(fmt.Sprintf("bench_append_sync_writers=%d", w), func(b *testing.B) {
			benchAppend(b, engine.SyncFlush, w)
		})
	}
	b.Run("bench_append_async", func(b *testing.B) { benchAppend(b, engine.AsyncFlush, 1) })
	b.Run("bench_get_message", benchGet)
}

func openBenchStore(b *testing.B, flush engine.FlushDiskType) *engine.Store {
	s, err := engine.Open(engine.Config{Dir: b.TempDir(), FlushDiskType: flush, MappedFileSizeCommitLog: 256 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchMessage(queue int32) *message.Message {
	host := netip.MustParseAddrPort("127.0.0.1:10911")
	return &message.Message{Topic: "BenchTopic", QueueID: queue, BornHost: host, StoreHost: host,
		Body: make([]byte, 1024)}
}

func benchAppend(b *testing.B, flush engine.FlushDiskType, writers int) {
	s := openBenchStore(b, flush)
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + writers - 1) / writers
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			m := benchMessage(int32(w % 8))
			for i := 0; i < per; i++ {
				if r := s.PutMessage(m); !r.Status.Stored() {
					b.Errorf("put: %v %v", r.Status, r.Err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}

func benchGet(b *testing.B) {
	s := openBenchStore(b, engine.AsyncFlush)
	const n = 4096
	for i := 0; i < n; i++ {
		if r := s.PutMessage(benchMessage(0)); !r.Status.Stored() {
			b.Fatalf("put: %v %v", r.Status, r.Err)
		}
	}
	for s.MaxOffsetInQueue("BenchTopic", 0) < n { // dispatch catching up
		time.Sleep(time.Millisecond)
	}
	b.SetBytes(32 * 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := s.GetMessage("BenchTopic", 0, int64(i*32%n), 32, nil)
		if len(r.Messages) == 0 {
			b.Fatalf("get: %v", r.Status)
		}
		r.Release()
	}
}
