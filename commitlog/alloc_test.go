package commitlog

import (
	"fmt"
	"testing"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// TestAppendDoesNotAllocate: the append path, waiting or not, allocates
// nothing in steady state (the flush loop included), on the files.
func TestAppendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, p := range policies {
		for _, w := range []flush.Wait{flush.NoWait, flush.WaitDurable} {
			t.Run(fmt.Sprintf("%s/wait=%d", p.name, w), func(t *testing.T) {
				l, err := Open(vfs.Default(), Config{Dir: t.TempDir(), SegmentSize: 64 << 20, Policy: p.p})
				must(t, err)
				defer l.Close()
				b := taggedBatch(0, 0)
				for range 100 { // warm the pools
					_, err = l.Append(b, w)
					must(t, err)
				}
				n := testing.AllocsPerRun(200, func() {
					if _, err := l.Append(b, w); err != nil {
						t.Fatal(err)
					}
				})
				if n > 0 {
					t.Fatalf("wait %d: %v allocations per append", w, n)
				}
			})
		}
	}
}
