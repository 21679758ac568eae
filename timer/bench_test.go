package timer

import (
	"testing"
	"time"
)

// BenchmarkFileRandom files entries due at random times over the next
// three days (each lands in an hour file, of which ~72 exist): the filing
// cost per pending message, beyond its commit-log record.
func BenchmarkFileRandom(b *testing.B) {
	svc := wheelOnly(b, time.Now().Unix())
	defer svc.slots.close()
	now := time.Now().UnixMilli()
	b.SetBytes(entrySize)
	for i := range b.N {
		at := now + int64(uint64(i)*2654435761%259_200_000)
		if err := svc.place(entry{target: at, phys: int64(i), size: 100}); err != nil {
			b.Fatal(err)
		}
	}
}
