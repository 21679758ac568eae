package engine

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestDispatchLimit: consume-queue entries are built only below the
// dispatch limit, follow it when it rises, and the whole log is dispatched
// again without it; Close ignores it (a clean shutdown, no abort file).
func TestDispatchLimit(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testConfig(dir, AsyncFlush))
	if err != nil {
		t.Fatal(err)
	}
	var limit atomic.Int64
	s.SetDispatchLimit(limit.Load)
	var ends []int64
	for i := 0; i < 3; i++ {
		r := s.PutMessage(msg("L", 0, "m", nil))
		if r.Status != PutOK {
			t.Fatal(r.Status, r.Err)
		}
		ends = append(ends, r.Offset+int64(r.Size)+4) // a record ends with its 4-byte trailer
	}
	waitFor(t, func() bool { return s.WrittenOffset() >= ends[2] })
	time.Sleep(250 * time.Millisecond) // dispatcher rounds
	if got := s.MaxOffsetInQueue("L", 0); got != 0 {
		t.Fatalf("%d entries dispatched with the limit at 0", got)
	}
	if got := s.DispatchLag(); got != 0 {
		t.Fatalf("lag %d beyond the limit", got)
	}
	limit.Store(ends[0])
	s.KickDispatch()
	waitFor(t, func() bool { return s.MaxOffsetInQueue("L", 0) == 1 })
	time.Sleep(250 * time.Millisecond)
	if got := s.MaxOffsetInQueue("L", 0); got != 1 {
		t.Fatalf("%d entries with the limit after the first record", got)
	}
	limit.Store(ends[1])
	s.KickDispatch()
	waitFor(t, func() bool { return s.MaxOffsetInQueue("L", 0) == 2 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "abort")); !os.IsNotExist(err) {
		t.Fatalf("abort file after Close with a dispatch limit: %v", err)
	}
	s2, err := Open(testConfig(dir, AsyncFlush))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.MaxOffsetInQueue("L", 0); got != 3 {
		t.Fatalf("reopened store has %d entries, want 3", got)
	}
}
