package commitlog

import (
	"sync"
	"testing"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// TestRemovedSegmentsFreedInSteps: retention's removed segments are
// truncated to nothing, one step at a time, only once no reader holds
// them (a reader pinned across the removal still reads its record), and
// also after a reopen (segments recovery opened read-only).
func TestRemovedSegmentsFreedInSteps(t *testing.T) {
	forEachConfig(t, func(t *testing.T, fs vfs.FS, p flush.Policy) {
		dir := t.TempDir()
		l := openLog(t, fs, dir, p, Hint{})
		fillSegments(t, l, 3)
		must(t, l.Close())
		l = openLog(t, fs, dir, p, Hint{}) // segments 0 and 1 are read-only now
		defer l.Close()
		fillSegments(t, l, 5)
		var mu sync.Mutex
		steps := map[vfs.File][]int64{}
		l.reaper.truncated = func(f vfs.File, size int64) {
			mu.Lock()
			steps[f] = append(steps[f], size)
			mu.Unlock()
		}
		held := l.segments()[0]
		if !held.acquireFiles() {
			t.Fatal("acquire")
		}
		if n, err := l.RemoveSegmentsBefore(3 * l.SegmentSize()); err != nil || n != 3 {
			t.Fatalf("removed %d, %v; want 3", n, err)
		}
		l.reaper.wait()
		mu.Lock()
		early := len(steps)
		mu.Unlock()
		if early != 2 {
			t.Fatalf("%d segments truncated while one is held, want the 2 unheld", early)
		}
		if _, err := held.rf.ReadAt(make([]byte, 4096), 0); err != nil {
			t.Fatalf("a reader pinned across the removal: %v", err)
		}
		held.releaseFiles()
		l.reaper.wait()
		mu.Lock()
		defer mu.Unlock()
		if len(steps) != 3 {
			t.Fatalf("%d segments truncated, want 3", len(steps))
		}
		for f, sz := range steps {
			want := (l.SegmentSize() + reapStep - 1) / reapStep
			if int64(len(sz)) != want || sz[len(sz)-1] != 0 {
				t.Fatalf("%s truncated through %v, want %d steps down to 0", f.Name(), sz, want)
			}
		}
	})
}
