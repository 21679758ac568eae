package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqd/mqd/consumequeue"
	"github.com/mqd/mqd/index"
	"github.com/mqd/mqd/internal/vfs"
)

// BenchmarkDispatchOnly measures the dispatcher alone: it replays a log of
// 1 KiB records (each with a tag, a key and a unique key) into fresh
// consume queues and a fresh index, on one goroutine with nothing else
// running, and reports records/s — the rate to set beside the ASYNC
// append rate (bench.BenchmarkAppendAsync).
func BenchmarkDispatchOnly(b *testing.B) {
	cfg := testConfig(b.TempDir(), AsyncFlush)
	cfg.MappedFileSizeCommitLog = segmentSizeForDispatchBench()
	cfg.MaxHashSlotNum, cfg.MaxIndexNum = 5_000_000, 20_000_000
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := string(make([]byte, 1024))
	for i := 0; i < b.N; i++ {
		m := msg("D", int32(i%8), body, map[string]string{"TAGS": "TagA", "KEYS": "k", "UNIQ_KEY": "U"})
		if r := s.PutMessage(m); r.Status != PutOK {
			b.Fatal(r.Status)
		}
	}
	for s.cl.Written() < s.cl.Tail() {
		time.Sleep(time.Millisecond)
	}
	dir := b.TempDir()
	cq, err := consumequeue.Open(vfs.Default(), filepath.Join(dir, "cq"), consumequeue.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer cq.Close()
	idx, err := index.Open(vfs.Default(), filepath.Join(dir, "index"), index.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	d := newDispatcher(s, s.cl.MinOffset(), []Dispatcher{&cqDispatcher{cq: cq}, &indexDispatcher{idx: idx}})
	b.ResetTimer()
	d.drain()
	b.StopTimer()
	if got := d.records.Load(); got != int64(b.N) {
		b.Fatalf("dispatched %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "dispatch-records/s")
}

// segmentSizeForDispatchBench: MQD_DISPATCH_FROM=memory uses 2 GiB segments
// so the whole log stays in the in-memory segment copies (the dispatcher's
// steady state, following the tail); the default 256 MiB makes most of it
// come from the files (catching up after a restart or a lag).
func segmentSizeForDispatchBench() int64 {
	if os.Getenv("MQD_DISPATCH_FROM") == "memory" {
		return 2 << 30
	}
	return 256 << 20
}
