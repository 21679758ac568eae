package consumequeue

import (
	"os"
	"testing"

	"github.com/mqd/mqd/internal/vfs"
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

// BenchmarkManyQueuesBudget is the dispatcher and the pulls of many
// queues with a small descriptor budget against no bound: an op puts one
// entry into the next of 2,000 queues and reads 8 entries written to
// files earlier from another queue; after every round over the queues
// Store.Flush(2) runs, and Store.Flush(0) every 8th round (the engine's
// checkpoint rounds). It reports the files opened per op. No assertion on
// time: compare the two in one sitting.
//
//	go test -run '^$' -bench ManyQueuesBudget -benchtime 400000x ./consumequeue
func BenchmarkManyQueuesBudget(b *testing.B) {
	for _, bc := range []struct {
		name   string
		budget int
	}{{"budget64", 64}, {"unbounded", -1}} {
		b.Run(bc.name, func(b *testing.B) { benchManyQueues(b, bc.budget) })
	}
}

func benchManyQueues(b *testing.B, budget int) {
	const queues, epf = 2000, 256
	fsys := &countFS{FS: vfs.Default()}
	s := openBudget(b, fsys, b.TempDir(), epf, budget)
	defer s.Close()
	qs := make([]*Queue, queues)
	for i := range qs {
		qs[i] = mustQueue(b, s, "T", i)
		putRange(b, qs[i], 0, 16)
	}
	if err := s.Flush(0); err != nil {
		b.Fatal(err)
	}
	opens := func() int {
		fsys.mu.Lock()
		defer fsys.mu.Unlock()
		return fsys.opens
	}
	before := opens()
	buf := make([]Entry, 0, 8)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round, qi := int64(16+i/queues), i%queues
		if err := qs[qi].Put(round, ent(round)); err != nil {
			b.Fatal(err)
		}
		from := (round * 7) % 9 // below 16: in files since the first flush
		if got, err := qs[(qi*31+7)%queues].Read(from, 8, buf[:0]); err != nil || len(got) != 8 {
			b.Fatal(len(got), err)
		}
		if qi == queues-1 {
			minPages := 2
			if (i/queues)%8 == 7 {
				minPages = 0
			}
			if err := s.Flush(minPages); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(opens()-before)/float64(b.N), "opens/op")
}
