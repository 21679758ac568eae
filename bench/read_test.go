package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/index"
	"github.com/mqd/mqd/internal/vfs"
	"golang.org/x/sys/unix"
)

// BenchmarkDispatch appends 1 KiB records under ASYNC_FLUSH from 4 writers
// and reports the append rate beside the dispatcher's own rate (records per
// second of dispatch work), which must exceed it.
func BenchmarkDispatch(b *testing.B) {
	s := benchStore(b, fmt.Sprintf("dispatch-%d", b.N), engine.Config{FlushDiskType: engine.AsyncFlush})
	before := s.DispatchStats()
	b.ResetTimer()
	r := Append(s, 4, b.N, 1024)
	for s.DispatchLag() > 0 || s.DurableOffset() < 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	st := s.DispatchStats()
	n, busy := st.Records-before.Records, st.Busy-before.Busy
	b.ReportMetric(r.RecordsPerSec(), "append-records/s")
	if busy > 0 {
		b.ReportMetric(float64(n)/busy.Seconds(), "dispatch-records/s")
	}
}

// filledStore returns a store holding n 1 KiB messages in queue 0 of
// topic "Read", all dispatched, with 64 MiB segments so that most of them
// are no longer in memory.
func filledStore(b *testing.B, n int) *engine.Store {
	s := benchStore(b, fmt.Sprintf("filled-%d", n), engine.Config{FlushDiskType: engine.AsyncFlush, MappedFileSizeCommitLog: 64 << 20})
	if s.MaxOffsetInQueue("Read", 0) >= int64(n) {
		return s
	}
	m := BenchMessage("Read", 0, 1024)
	for i := 0; i < n; i++ {
		if r := s.PutMessage(m); r.Status != engine.PutOK {
			b.Fatal(r.Status, r.Err)
		}
	}
	for s.MaxOffsetInQueue("Read", 0) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	return s
}

const readMessages = 400_000 // ~450 MB of log: 7 segments, the oldest 5 only on disk

// BenchmarkGetMessage pulls 32 × 1 KiB messages from the tail (in memory)
// and from cold data (the page cache dropped for the segment files first).
func BenchmarkGetMessage(b *testing.B) {
	b.Run("tail", func(b *testing.B) {
		s := filledStore(b, readMessages)
		max := s.MaxOffsetInQueue("Read", 0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r := s.GetMessage("Read", 0, max-32-int64(i%1000), 32, nil)
			if len(r.Messages) != 32 {
				b.Fatalf("%v: %d messages", r.Status, len(r.Messages))
			}
			r.Release()
		}
	})
	b.Run("cold", func(b *testing.B) {
		s := filledStore(b, readMessages)
		dropCache(b, s)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			off := int64(i*32) % (readMessages / 2)
			r := s.GetMessage("Read", 0, off, 32, nil)
			if len(r.Messages) == 0 {
				b.Fatalf("%v at %d", r.Status, off)
			}
			r.Release()
		}
	})
}

// BenchmarkCatchUpRead consumes the whole backlog from offset 0 the way a
// lagging consumer does (pulls of 32, cold data) and reports MB/s.
func BenchmarkCatchUpRead(b *testing.B) {
	s := filledStore(b, readMessages)
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dropCache(b, s)
		b.StartTimer()
		for off := int64(0); off < readMessages; {
			r := s.GetMessage("Read", 0, off, 32, nil)
			bytes += int64(r.TotalSize)
			off = r.NextBeginOffset
			r.Release()
		}
	}
	b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/1e6, "MB/s")
}

// dropCache evicts the store's files from the page cache (posix_fadvise
// DONTNEED), so reads go to the disk.
func dropCache(b *testing.B, s *engine.Store) {
	files, _ := filepath.Glob(filepath.Join(s.Dir(), "commitlog", "*"))
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
}

// BenchmarkIndexQuery measures a key lookup in an index holding 10 million
// keys (two files' worth at the default 5M slots × 20M entries per file).
func BenchmarkIndexQuery(b *testing.B) {
	const keys = 10_000_000
	dir := b.TempDir()
	if d := os.Getenv("MQD_BENCH_DIR"); d != "" {
		dir, _ = os.MkdirTemp(d, "index")
		defer os.RemoveAll(dir)
	}
	idx, err := index.Open(vfs.Default(), dir, index.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	now := time.Now().UnixMilli()
	key := make([]string, 1)
	for i := 0; i < keys; i++ {
		key[0] = fmt.Sprintf("key-%d", i)
		if err := idx.Put("IndexTopic", key, int64(i)*1100, now+int64(i/10000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := fmt.Sprintf("key-%d", (i*7919)%keys)
		offs, _, _, err := idx.Query("IndexTopic", k, 32, 0, now+keys)
		if err != nil || len(offs) == 0 {
			b.Fatalf("%s: %v %v", k, offs, err)
		}
	}
}
