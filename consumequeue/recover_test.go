package consumequeue

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mqd/mqd/internal/vfs"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	f, err := vfs.Default().Open(name, vfs.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// editFile opens name read-write and hands it to fn.
func editFile(t testing.TB, name string, fn func(f vfs.File)) {
	t.Helper()
	f, err := vfs.Default().Open(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fn(f)
}

// writtenQueue returns a closed store directory holding queue T/0 with
// entries [0, n) in files of epf entries.
func writtenQueue(t testing.TB, epf int, n int64) string {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir, epf)
	putRange(t, mustQueue(t, s, "T", 0), 0, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func reopenQueue(t testing.TB, dir string, epf int) (*Store, *Queue) {
	t.Helper()
	s := openStore(t, dir, epf)
	q, ok := s.Lookup("T", 0)
	if !ok {
		s.Close()
		t.Fatal("queue T/0 not loaded")
	}
	return s, q
}

func qfile(dir string, base int64) string {
	return filepath.Join(dir, "T", "0", fileName(base))
}

func TestTornTailZeroed(t *testing.T) {
	dir := writtenQueue(t, 4, 10) // files 0, 80, 160 (2 entries)
	editFile(t, qfile(dir, 160), func(f vfs.File) {
		if _, err := f.WriteAt(make([]byte, 40), 20); err != nil { // zero entry 9, extend by one zero slot
			t.Fatal(err)
		}
	})
	s, q := reopenQueue(t, dir, 4)
	defer s.Close()
	checkOffsets(t, q, 0, 9)
	checkRange(t, q, 0, 9)
	if got := len(readFile(t, qfile(dir, 160))); got != 20 {
		t.Fatalf("last file is %d bytes after recovery, want 20", got)
	}
	putRange(t, q, 9, 12)
	checkRange(t, q, 0, 12)
}

func TestTornTailPartialEntry(t *testing.T) {
	dir := writtenQueue(t, 4, 10)
	editFile(t, qfile(dir, 160), func(f vfs.File) {
		if err := f.Truncate(33); err != nil { // entry 8 whole, entry 9 torn
			t.Fatal(err)
		}
	})
	s, q := reopenQueue(t, dir, 4)
	defer s.Close()
	checkOffsets(t, q, 0, 9)
	if got := q.MaxPhysicalOffset(); got != ent(8).end() {
		t.Fatalf("MaxPhysicalOffset = %d", got)
	}
	if got := len(readFile(t, qfile(dir, 160))); got != 20 {
		t.Fatalf("last file is %d bytes, want 20", got)
	}
}

func TestTornInThirdNewestFile(t *testing.T) {
	dir := writtenQueue(t, 4, 20) // files 0,80,160,240,320
	editFile(t, qfile(dir, 160), func(f vfs.File) {
		if _, err := f.WriteAt(make([]byte, 20), 40); err != nil { // zero entry 10
			t.Fatal(err)
		}
	})
	s, q := reopenQueue(t, dir, 4)
	defer s.Close()
	checkOffsets(t, q, 0, 10)
	checkRange(t, q, 0, 10)
	want := []string{fileName(0), fileName(80), fileName(160)}
	if got := listDir(t, filepath.Join(dir, "T", "0")); !reflect.DeepEqual(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
}

func TestShortOlderFileRescanned(t *testing.T) {
	dir := writtenQueue(t, 4, 20)
	editFile(t, qfile(dir, 0), func(f vfs.File) {
		if err := f.Truncate(60); err != nil { // older than the scan window and short
			t.Fatal(err)
		}
	})
	s, q := reopenQueue(t, dir, 4)
	defer s.Close()
	checkOffsets(t, q, 0, 3)
	if got := listDir(t, filepath.Join(dir, "T", "0")); len(got) != 1 {
		t.Fatalf("files = %v, want only the first", got)
	}
}

func TestEmptyOrPrefillOnlyQueueDropped(t *testing.T) {
	dir := writtenQueue(t, 4, 2)
	editFile(t, qfile(dir, 0), func(f vfs.File) { // file holds zeros only
		if _, err := f.WriteAt(make([]byte, 40), 0); err != nil {
			t.Fatal(err)
		}
	})
	s := openStore(t, dir, 4)
	if _, ok := s.Lookup("T", 0); ok {
		t.Fatal("queue with no valid entry was loaded")
	}
	s.Close()

	dir = t.TempDir()
	s = openStore(t, dir, 4)
	putRange(t, mustQueue(t, s, "T", 0), 3, 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editFile(t, qfile(dir, 0), func(f vfs.File) { // keep the prefill, tear entry 3
		if err := f.Truncate(60); err != nil {
			t.Fatal(err)
		}
	})
	s = openStore(t, dir, 4)
	defer s.Close()
	if _, ok := s.Lookup("T", 0); ok {
		t.Fatal("prefill-only queue was loaded")
	}
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 3, 5)
	checkOffsets(t, q, 3, 5)
}

func TestOpenRejectsForeignFiles(t *testing.T) {
	dir := writtenQueue(t, 4, 6)
	if _, err := Open(vfs.Default(), dir, Config{EntriesPerFile: 3}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with another EntriesPerFile: %v", err)
	}
	editFile(t, qfile(dir, 80), func(f vfs.File) {
		if _, err := f.WriteAt(make([]byte, 200), 0); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := Open(vfs.Default(), dir, Config{EntriesPerFile: 4}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with an oversized file: %v", err)
	}
	dir = writtenQueue(t, 4, 2)
	f, err := vfs.Default().Open(filepath.Join(dir, "T", "0", "junk"), vfs.Create)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open(vfs.Default(), dir, Config{EntriesPerFile: 4}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a stray file: %v", err)
	}
}

func TestStaleFileBeforeGapRemoved(t *testing.T) {
	dir := writtenQueue(t, 4, 14) // files 0,80,160,240
	if err := vfs.Default().Remove(qfile(dir, 80)); err != nil {
		t.Fatal(err)
	}
	s, q := reopenQueue(t, dir, 4)
	defer s.Close()
	checkOffsets(t, q, 8, 14)
	checkRange(t, q, 8, 14)
	want := []string{fileName(160), fileName(240)}
	if got := listDir(t, filepath.Join(dir, "T", "0")); !reflect.DeepEqual(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
}

func TestTruncateDirty(t *testing.T) {
	dir := writtenQueue(t, 4, 14)
	s, q := reopenQueue(t, dir, 4)
	putRange(t, q, 14, 16) // pending, not yet written
	if err := q.TruncateDirty(ent(6).CommitLogOffset + 50); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, q, 0, 7)
	checkRange(t, q, 0, 7)
	if got := q.MaxPhysicalOffset(); got != ent(6).end() {
		t.Fatalf("MaxPhysicalOffset = %d", got)
	}
	if err := q.TruncateDirty(ent(100).CommitLogOffset); err != nil { // nothing past
		t.Fatal(err)
	}
	checkOffsets(t, q, 0, 7)
	putRange(t, q, 7, 9) // redispatch continues
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, q = reopenQueue(t, dir, 4)
	defer s.Close()
	checkOffsets(t, q, 0, 9)
	checkRange(t, q, 0, 9)
	want := []string{fileName(0), fileName(80), fileName(160)}
	if got := listDir(t, filepath.Join(dir, "T", "0")); !reflect.DeepEqual(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
}

func TestTruncateDirtyAtFileBoundaryAndEverything(t *testing.T) {
	dir := writtenQueue(t, 4, 10)
	s, q := reopenQueue(t, dir, 4)
	defer s.Close()
	if err := s.TruncateDirty(ent(8).CommitLogOffset); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, q, 0, 8)
	checkRange(t, q, 0, 8)
	putRange(t, q, 8, 10)
	checkRange(t, q, 0, 10)
	if err := q.TruncateDirty(ent(0).CommitLogOffset); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, q, 0, 0)
	if got := q.MaxPhysicalOffset(); got != -1 {
		t.Fatalf("MaxPhysicalOffset = %d, want -1", got)
	}
	if got := listDir(t, filepath.Join(dir, "T", "0")); len(got) != 0 {
		t.Fatalf("files left: %v", got)
	}
	putRange(t, q, 0, 3)
	checkRange(t, q, 0, 3)
}

func TestDeleteBelow(t *testing.T) {
	dir := writtenQueue(t, 4, 14) // files 0,80,160,240
	s, q := reopenQueue(t, dir, 4)
	n, err := q.DeleteBelow(ent(5).CommitLogOffset)
	if err != nil || n != 1 {
		t.Fatalf("DeleteBelow = %d, %v; want 1 file", n, err)
	}
	checkOffsets(t, q, 5, 14)
	if _, err := q.Get(4); !errors.Is(err, ErrBelowMin) {
		t.Fatalf("Get(4) err = %v", err)
	}
	checkRange(t, q, 5, 14)
	n, err = s.DeleteBelow(1 << 40) // everything below: the newest file stays
	if err != nil || n != 2 {
		t.Fatalf("DeleteBelow(all) = %d, %v; want 2 files", n, err)
	}
	checkOffsets(t, q, 14, 14)
	if got := listDir(t, filepath.Join(dir, "T", "0")); !reflect.DeepEqual(got, []string{fileName(240)}) {
		t.Fatalf("files = %v", got)
	}
	putRange(t, q, 14, 16)
	checkRange(t, q, 14, 16)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, q = reopenQueue(t, dir, 4)
	defer s.Close()
	checkOffsets(t, q, 12, 16) // min is the file start until corrected…
	if _, err := q.DeleteBelow(ent(14).CommitLogOffset); err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, q, 14, 16) // …by the engine's DeleteBelow after Open
}

func TestSearchOffsetByTime(t *testing.T) {
	s := openStore(t, t.TempDir(), 4)
	defer s.Close()
	q := mustQueue(t, s, "T", 0)
	// store times by queue offset: 100 110 120 130 130 130 160 170 180 190
	times := map[int64]int64{}
	for i := int64(0); i < 10; i++ {
		ts := 100 + 10*i
		if i == 4 || i == 5 {
			ts = 130
		}
		times[ent(i).CommitLogOffset] = ts
	}
	storeTime := func(phys int64, size int32) (int64, error) { return times[phys], nil }
	if got, err := q.SearchOffsetByTime(500, storeTime); err != nil || got != 0 {
		t.Fatalf("empty queue: %d, %v", got, err)
	}
	putRange(t, q, 0, 6)
	if err := q.Flush(0); err != nil {
		t.Fatal(err)
	}
	putRange(t, q, 6, 10)
	cases := []struct{ ts, want int64 }{
		{50, 0}, {100, 0}, {104, 0}, {105, 0}, {106, 1}, {130, 3}, {144, 5}, {145, 5},
		{146, 6}, {160, 6}, {190, 9}, {1000, 9},
	}
	for _, c := range cases {
		got, err := q.SearchOffsetByTime(c.ts, storeTime)
		if err != nil || got != c.want {
			t.Errorf("SearchOffsetByTime(%d) = %d, %v; want %d", c.ts, got, err, c.want)
		}
	}
	if _, err := q.DeleteBelow(ent(2).CommitLogOffset); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.SearchOffsetByTime(50, storeTime); got != 2 {
		t.Errorf("after retention: %d, want min offset 2", got)
	}
	boom := errors.New("boom")
	fail := func(int64, int32) (int64, error) { return 0, boom }
	if _, err := q.SearchOffsetByTime(150, fail); !errors.Is(err, boom) {
		t.Errorf("error not returned: %v", err)
	}
	gone := func(int64, int32) (int64, error) { return -1, nil }
	if got, err := q.SearchOffsetByTime(150, gone); err != nil || got != 0 {
		t.Errorf("unreadable record: %d, %v; want 0", got, err)
	}
}
