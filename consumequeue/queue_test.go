package consumequeue

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mqd/mqd/internal/vfs"
)

// ent is the i-th test entry: records of 100 bytes laid out back to back
// from commit-log offset 1000.
func ent(i int64) Entry {
	return Entry{CommitLogOffset: 1000 + i*100, Size: 100, TagsCode: i - 5}
}

func openStore(t testing.TB, dir string, epf int) *Store {
	t.Helper()
	s, err := Open(vfs.Default(), dir, Config{EntriesPerFile: epf})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustQueue(t testing.TB, s *Store, topic string, id int) *Queue {
	t.Helper()
	q, err := s.Queue(topic, id)
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	return q
}

// putRange puts ent(i) at offset i for i in [from, to).
func putRange(t testing.TB, q *Queue, from, to int64) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Put(i, ent(i)); err != nil {
			t.Fatalf("Put(%d): %v", i, err)
		}
	}
}

// checkRange reads [from, to) and compares with ent(i).
func checkRange(t testing.TB, q *Queue, from, to int64) {
	t.Helper()
	got, err := q.Read(from, int(to-from), nil)
	if err != nil {
		t.Fatalf("Read(%d, %d): %v", from, to-from, err)
	}
	if int64(len(got)) != to-from {
		t.Fatalf("Read(%d, %d): got %d entries", from, to-from, len(got))
	}
	for i, e := range got {
		if want := ent(from + int64(i)); e != want {
			t.Fatalf("entry %d = %+v, want %+v", from+int64(i), e, want)
		}
	}
}

func checkOffsets(t testing.TB, q *Queue, min, max int64) {
	t.Helper()
	if got := q.MinOffset(); got != min {
		t.Errorf("MinOffset = %d, want %d", got, min)
	}
	if got := q.MaxOffset(); got != max {
		t.Errorf("MaxOffset = %d, want %d", got, max)
	}
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	names, err := vfs.Default().List(dir)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return names
}

func TestPutGetReadAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 4)
	defer s.Close()
	q := mustQueue(t, s, "T", 3)
	putRange(t, q, 0, 10)
	checkOffsets(t, q, 0, 10)
	checkRange(t, q, 0, 10) // all from pending
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	putRange(t, q, 10, 13) // mixed: files + pending
	for from := int64(0); from < 13; from++ {
		for to := from; to <= 13; to++ {
			checkRange(t, q, from, to)
		}
	}
	for i := int64(0); i < 13; i++ {
		e, err := q.Get(i)
		if err != nil || e != ent(i) {
			t.Fatalf("Get(%d) = %+v, %v", i, e, err)
		}
	}
	got, err := q.Read(11, 100, nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("Read past max: %d entries, %v", len(got), err)
	}
	if err := q.Flush(0); err != nil {
		t.Fatal(err)
	}
	want := []string{"00000000000000000000", "00000000000000000080", "00000000000000000160", "00000000000000000240"}
	if names := listDir(t, filepath.Join(dir, "T", "3")); !reflect.DeepEqual(names, want) {
		t.Fatalf("files = %v, want %v", names, want)
	}
	if got := q.MaxPhysicalOffset(); got != ent(12).end() {
		t.Fatalf("MaxPhysicalOffset = %d", got)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 4)
	putRange(t, mustQueue(t, s, "A", 0), 0, 9)
	putRange(t, mustQueue(t, s, "A", 1), 0, 2)
	putRange(t, mustQueue(t, s, "B", 7), 0, 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, 4)
	defer s.Close()
	if got := s.Topics(); !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Fatalf("Topics = %v", got)
	}
	if got := s.QueueIDs("A"); !reflect.DeepEqual(got, []int{0, 1}) {
		t.Fatalf("QueueIDs = %v", got)
	}
	q, ok := s.Lookup("A", 0)
	if !ok {
		t.Fatal("A/0 missing")
	}
	checkOffsets(t, q, 0, 9)
	checkRange(t, q, 0, 9)
	if got, want := s.MaxPhysicalOffset(), ent(8).end(); got != want {
		t.Fatalf("store MaxPhysicalOffset = %d, want %d", got, want)
	}
	putRange(t, q, 9, 11) // appends continue in the partial last file
	checkRange(t, q, 0, 11)
	q7, _ := s.Lookup("B", 7)
	checkOffsets(t, q7, 0, 4)
	if _, ok := s.Lookup("B", 8); ok {
		t.Fatal("Lookup created a queue")
	}
}

func TestIdempotentRedispatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 4)
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, 6)
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	putRange(t, q, 6, 9) // never flushed: lost in the "crash" below
	putRange(t, q, 0, 9) // redispatch of what is there: skipped
	checkOffsets(t, q, 0, 9)

	// Crash: abandon s without Close; pending entries 6..8 never reach disk.
	s2 := openStore(t, dir, 4)
	defer s2.Close()
	q2, _ := s2.Lookup("T", 0)
	checkOffsets(t, q2, 0, 6)
	putRange(t, q2, 0, 9) // redispatch from the start of the commit log
	checkOffsets(t, q2, 0, 9)
	checkRange(t, q2, 0, 9)
}

func TestPrefill(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 4)
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 6, 10)
	checkOffsets(t, q, 6, 10)
	if _, err := q.Get(5); !errors.Is(err, ErrBelowMin) {
		t.Fatalf("Get(5) err = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names := listDir(t, filepath.Join(dir, "T", "0"))
	if want := []string{"00000000000000000080", "00000000000000000160"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("files = %v, want %v", names, want)
	}
	raw := readFile(t, filepath.Join(dir, "T", "0", names[0]))
	if e := getEntry(raw[20:40]); e != prefill {
		t.Fatalf("slot 5 = %+v, want prefill", e)
	}
	s = openStore(t, dir, 4)
	defer s.Close()
	q, _ = s.Lookup("T", 0)
	checkOffsets(t, q, 6, 10)
	checkRange(t, q, 6, 10)
}

func TestBadInput(t *testing.T) {
	s := openStore(t, t.TempDir(), 4)
	defer s.Close()
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, 3)
	cases := []struct {
		name string
		off  int64
		e    Entry
		want error
	}{
		{"gap", 5, ent(5), ErrGap},
		{"conflict", 1, ent(7), ErrConflict},
		{"negative offset", -1, ent(3), ErrInvalid},
		{"zero size", 3, Entry{CommitLogOffset: 5000, Size: 0}, ErrInvalid},
		{"negative phys", 3, Entry{CommitLogOffset: -5, Size: 10}, ErrInvalid},
		{"prefill lookalike", 3, prefill, ErrInvalid},
		{"overflow", 3, Entry{CommitLogOffset: math.MaxInt64 - 1, Size: 10}, ErrInvalid},
	}
	for _, c := range cases {
		if err := q.Put(c.off, c.e); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	checkOffsets(t, q, 0, 3)
	if _, err := q.Read(-1, 2, nil); !errors.Is(err, ErrBelowMin) {
		t.Errorf("Read(-1) err = %v", err)
	}
	if _, err := q.Read(4, 2, nil); !errors.Is(err, ErrBeyondMax) {
		t.Errorf("Read(4) err = %v", err)
	}
	if got, err := q.Read(3, 2, nil); err != nil || len(got) != 0 {
		t.Errorf("Read(max) = %v, %v", got, err)
	}
	if got, err := q.Read(0, -1, nil); err != nil || len(got) != 3 {
		t.Errorf("Read(0, -1) = %d entries, %v", len(got), err)
	}
	if _, err := q.Get(3); !errors.Is(err, ErrBeyondMax) {
		t.Errorf("Get(max) err = %v", err)
	}
	for _, topic := range []string{"", ".", "..", "a/b", "a\x00"} {
		if _, err := s.Queue(topic, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("Queue(%q) err = %v", topic, err)
		}
	}
	if _, err := s.Queue("T", -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Queue(-1) err = %v", err)
	}
	if _, err := Open(vfs.Default(), t.TempDir(), Config{EntriesPerFile: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open(-1) err = %v", err)
	}
}

func TestReadAllocationFree(t *testing.T) {
	s := openStore(t, t.TempDir(), 64)
	defer s.Close()
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, 100)
	if err := q.Flush(0); err != nil {
		t.Fatal(err)
	}
	putRange(t, q, 100, 120)
	buf := make([]Entry, 0, 64)
	for _, from := range []int64{10, 100} { // file path, pending path
		allocs := testing.AllocsPerRun(50, func() {
			got, err := q.Read(from, 16, buf[:0])
			if err != nil || len(got) != 16 {
				t.Fatalf("Read: %d, %v", len(got), err)
			}
		})
		if allocs != 0 {
			t.Errorf("Read from %d: %v allocs per run", from, allocs)
		}
	}
}

func TestFlushMinPages(t *testing.T) {
	s := openStore(t, t.TempDir(), 1000)
	defer s.Close()
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, 10)
	if err := s.Flush(2); err != nil {
		t.Fatal(err)
	}
	q.mu.RLock()
	written, synced := q.written, q.synced
	q.mu.RUnlock()
	if written != 10 || synced != 0 {
		t.Fatalf("after Flush(2) of 200 bytes: written %d synced %d, want 10 0", written, synced)
	}
	putRange(t, q, 10, 500) // 10 000 bytes: two pages crossed
	if err := s.Flush(2); err != nil {
		t.Fatal(err)
	}
	q.mu.RLock()
	written, synced = q.written, q.synced
	q.mu.RUnlock()
	if written != 500 || synced != 500 {
		t.Fatalf("after Flush(2): written %d synced %d, want 500 500", written, synced)
	}
}

func TestDeleteTopic(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 4)
	q := mustQueue(t, s, "gone", 0)
	putRange(t, q, 0, 6)
	putRange(t, mustQueue(t, s, "kept", 0), 0, 2)
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	if got := s.Topics(); !reflect.DeepEqual(got, []string{"kept"}) {
		t.Fatalf("Topics = %v", got)
	}
	if err := q.Put(6, ent(6)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after delete: %v", err)
	}
	if _, err := q.Get(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after delete: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, 4)
	defer s.Close()
	if got := s.Topics(); !reflect.DeepEqual(got, []string{"kept"}) {
		t.Fatalf("Topics after reopen = %v", got)
	}
	q = mustQueue(t, s, "gone", 0) // re-created from scratch
	checkOffsets(t, q, 0, 0)
}

func TestClosedStore(t *testing.T) {
	s := openStore(t, t.TempDir(), 4)
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Queue("U", 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Queue after Close: %v", err)
	}
	if err := q.Put(2, ent(2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if err := q.Flush(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
}

func TestReadHugeMax(t *testing.T) {
	s := openStore(t, t.TempDir(), 4)
	defer s.Close()
	q := mustQueue(t, s, "T", 0)
	putRange(t, q, 0, 5)
	got, err := q.Read(2, math.MaxInt, nil)
	if err != nil || len(got) != 3 {
		t.Fatalf("Read(2, MaxInt) = %d entries, %v", len(got), err)
	}
}
