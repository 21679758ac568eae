package consumequeue

import (
	"os"
	"testing"
)

// BenchmarkPut measures the dispatcher's append (memory only) with a flush
// every 4096 entries, as the engine's flush goroutine would do.
func BenchmarkPut(b *testing.B) {
	s := openStore(b, b.TempDir(), 1<<16)
	defer s.Close()
	q := mustQueue(b, s, "T", 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := int64(0); i < int64(b.N); i++ {
		if err := q.Put(i, ent(i)); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			if err := q.Flush(2); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRead measures a 32-entry read from a file (pread path).
func BenchmarkRead(b *testing.B) {
	s := openStore(b, b.TempDir(), 1<<12)
	defer s.Close()
	q := mustQueue(b, s, "T", 0)
	putRange(b, q, 0, 10000)
	if err := q.Flush(0); err != nil {
		b.Fatal(err)
	}
	buf := make([]Entry, 0, 32)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := q.Read(int64(i*32%9000), 32, buf[:0])
		if err != nil || len(got) != 32 {
			b.Fatal(len(got), err)
		}
	}
}

// BenchmarkFlushRound is one checkpoint round of the engine at 50k
// entries/s over 8 queues: 6,250 entries put, then Store.Flush(2), which
// writes them and fdatasyncs every queue. It reports the round's time;
// compare builds A/B in one sitting. Issue 14 suspected these
// size-changing fdatasyncs (each commits the ext4 journal); writing zeros
// ahead of the entries so that the syncs change no metadata measured
// within noise here (BENCHMARKS.md, issue 14 section).
//
//	MQD_BENCH_DIR=/path go test -run '^$' -bench FlushRound -benchtime 200x ./consumequeue
func BenchmarkFlushRound(b *testing.B) {
	dir := b.TempDir()
	if d := os.Getenv("MQD_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "cqflush"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	s := openStore(b, dir, 300_000)
	defer s.Close()
	const queues, perRound = 8, 6250
	qs := make([]*Queue, queues)
	for i := range qs {
		qs[i] = mustQueue(b, s, "T", i)
	}
	next := make([]int64, queues)
	b.ResetTimer()
	for range b.N {
		for i := range perRound {
			q := i % queues
			if err := qs[q].Put(next[q], ent(next[q])); err != nil {
				b.Fatal(err)
			}
			next[q]++
		}
		if err := s.Flush(2); err != nil {
			b.Fatal(err)
		}
	}
}
