package index

import (
	"fmt"
	"math"
	"testing"
)

// BenchmarkPut indexes one message with a unique key and a shared key.
func BenchmarkPut(b *testing.B) {
	s := openSvc(b, b.TempDir(), small(1<<16, 1<<18))
	defer s.Close()
	keys := make([][]string, 1024)
	for i := range keys {
		keys[i] = []string{fmt.Sprintf("C0A8010100002A9F0000%012d", i), "order"}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Put("TopicTest", keys[i%len(keys)], int64(i)*200, t0+int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQuery looks up a unique key among 50 000 indexed messages.
func BenchmarkQuery(b *testing.B) {
	s := openSvc(b, b.TempDir(), small(1<<16, 1<<18))
	defer s.Close()
	const n = 50_000
	for i := 0; i < n; i++ {
		if err := s.Put("TopicTest", []string{fmt.Sprint("key-", i)}, int64(i)*200, t0+int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, _, _, err := s.Query("TopicTest", fmt.Sprint("key-", i%n), 32, 0, math.MaxInt64)
		if err != nil || len(got) == 0 {
			b.Fatal(len(got), err)
		}
	}
}
