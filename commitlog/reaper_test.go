package commitlog

import (
	"sync"
	"testing"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// TestRemovedSegmentsFreedInSteps: retention's removed segments are
// truncated to nothing, one step at a time, only once no reader holds
// them (a reader pinned across the removal still reads), both segments
// recovery opened read-only and one written by this run.
func TestRemovedSegmentsFreedInSteps(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		dir := t.TempDir()
		l := openLog(t, fs, dir, p, Hint{})
		fillSegments(t, l, 3)
		must(t, l.Close())
		l = openLog(t, fs, dir, p, Hint{}) // segments 0-2 are read-only now
		defer l.Close()
		fillSegments(t, l, 5) // segment 3 is written by this run (its own writable handle)
		var mu sync.Mutex
		steps := map[vfs.File][]int64{}
		l.reaper.Truncated = func(f vfs.File, size int64) {
			mu.Lock()
			steps[f] = append(steps[f], size)
			mu.Unlock()
		}
		held := l.segments()[0]
		if !held.acquireFiles() {
			t.Fatal("acquire")
		}
		if n, err := l.RemoveSegmentsBefore(4 * l.SegmentSize()); err != nil || n != 4 {
			t.Fatalf("removed %d, %v; want 4", n, err)
		}
		l.reaper.Wait()
		mu.Lock()
		early := len(steps)
		mu.Unlock()
		if early != 3 {
			t.Fatalf("%d segments truncated while one is held, want the 3 unheld", early)
		}
		if _, err := held.rf.ReadAt(make([]byte, 4096), 0); err != nil {
			t.Fatalf("a reader pinned across the removal: %v", err)
		}
		held.releaseFiles()
		l.reaper.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(steps) != 4 {
			t.Fatalf("%d segments truncated, want 4", len(steps))
		}
		for f, sz := range steps {
			want := (l.SegmentSize() + vfs.ReapStep - 1) / vfs.ReapStep
			if int64(len(sz)) != want || sz[len(sz)-1] != 0 {
				t.Fatalf("%s truncated through %v, want %d steps down to 0", f.Name(), sz, want)
			}
		}
	})
}
