package commitlog

import (
	"errors"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// AwaitNext returns once the segment after the tail is prepared and parked
// for the roll; the appends that fill the tail then roll into it, and a
// closed log answers ErrClosed.
func TestAwaitNextParksThePreparedSegment(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		l := openLog(t, fs, t.TempDir(), p, Hint{})
		if err := l.AwaitNext(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		next, tail := l.next, l.tailSegment().base
		l.mu.Unlock()
		if next == nil || next.base != tail+l.cfg.SegmentSize {
			t.Fatalf("after AwaitNext the next segment is %v (tail at %d)", next, tail)
		}
		if err := l.AwaitNext(time.Second); err != nil { // already parked
			t.Fatal(err)
		}
		var last Result
		for range 100 { // 100 records of ~1 KiB fill the 64 KiB tail
			last = mustAppend(t, l, one(string(make([]byte, 1000))))
		}
		if last.Offset < l.cfg.SegmentSize {
			t.Fatalf("100 records did not roll: last at %d", last.Offset)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.AwaitNext(time.Second); !errors.Is(err, ErrClosed) {
			t.Fatalf("AwaitNext on a closed log: %v", err)
		}
	})
}
