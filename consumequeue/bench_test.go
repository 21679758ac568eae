package consumequeue

import "testing"

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
