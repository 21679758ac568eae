package consumequeue

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// countFS counts the files open through it, remembers the most ever open,
// and records every file closed while it held bytes written since its
// last successful Sync (a descriptor closed dirty could hide a writeback
// error). emfile makes that many Opens fail with EMFILE.
type countFS struct {
	vfs.FS
	mu         sync.Mutex
	open, peak int
	dirtyClose []string
	emfile     int
	opens      int
	onOpen     func(name string) // called before each Open, without mu
}

// failOpens makes the next n Opens fail with EMFILE.
func (c *countFS) failOpens(n int) {
	c.mu.Lock()
	c.emfile = n
	c.mu.Unlock()
}

type countFile struct {
	vfs.File
	fs    *countFS
	dirty bool // guarded by fs.mu
}

func (c *countFS) Open(name string, flags vfs.OpenFlags) (vfs.File, error) {
	c.mu.Lock()
	c.opens++
	if c.emfile > 0 {
		c.emfile--
		c.mu.Unlock()
		return nil, fmt.Errorf("open %s: %w", name, syscall.EMFILE)
	}
	hook := c.onOpen
	c.mu.Unlock()
	if hook != nil {
		hook(name)
	}
	f, err := c.FS.Open(name, flags)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.open++
	c.peak = max(c.peak, c.open)
	c.mu.Unlock()
	return &countFile{File: f, fs: c}, nil
}

func (f *countFile) setDirty() {
	f.fs.mu.Lock()
	f.dirty = true
	f.fs.mu.Unlock()
}

func (f *countFile) WriteAt(p []byte, off int64) (int, error) {
	f.setDirty()
	return f.File.WriteAt(p, off)
}

func (f *countFile) Truncate(size int64) error {
	f.setDirty()
	return f.File.Truncate(size)
}

func (f *countFile) Sync() error {
	f.fs.mu.Lock()
	was := f.dirty
	f.dirty = false
	f.fs.mu.Unlock()
	if err := f.File.Sync(); err != nil {
		f.fs.mu.Lock()
		f.dirty = f.dirty || was
		f.fs.mu.Unlock()
		return err
	}
	return nil
}

func (f *countFile) Close() error {
	f.fs.mu.Lock()
	f.fs.open--
	if f.dirty {
		f.fs.dirtyClose = append(f.fs.dirtyClose, f.Name())
	}
	f.fs.mu.Unlock()
	return f.File.Close()
}

func (c *countFS) state() (open, peak int, dirtyClose []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.peak, append([]string(nil), c.dirtyClose...)
}

func openBudget(t testing.TB, fsys vfs.FS, dir string, epf, budget int) *Store {
	t.Helper()
	s, err := Open(fsys, dir, Config{EntriesPerFile: epf, MaxOpenFiles: budget})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// TestBudgetManyQueues: 200 queues of 5 files each under a budget of 8
// open files: puts, flushes with and without sync, reads of every queue,
// retention and a reopen all work, and no more than 8 files are ever open.
// Every file closed to make room had been synced (none was closed dirty
// before the final Close).
func TestBudgetManyQueues(t *testing.T) {
	const queues, epf, n, budget = 200, 10, 47, 8
	fsys := &countFS{FS: vfs.Default()}
	dir := t.TempDir()
	s := openBudget(t, fsys, dir, epf, budget)
	for round := int64(0); round < n; round += 7 {
		for i := 0; i < queues; i++ {
			putRange(t, mustQueue(t, s, fmt.Sprint("T", i%20), i/20), round, min(round+7, n))
		}
		if err := s.Flush(1 + int(round%2)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < queues; i++ {
		checkRange(t, mustQueue(t, s, fmt.Sprint("T", i%20), i/20), 0, n)
	}
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	if _, _, dc := fsys.state(); len(dc) > 0 {
		t.Fatalf("files closed with unsynced bytes: %v", dc)
	}
	for i := 0; i < queues; i++ {
		checkRange(t, mustQueue(t, s, fmt.Sprint("T", i%20), i/20), 0, n)
	}
	if _, err := s.DeleteBelow(ent(20).CommitLogOffset); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if open, peak, _ := fsys.state(); open != 0 || peak > budget {
		t.Fatalf("after Close: %d files open, at most %d were, budget %d", open, peak, budget)
	}
	s = openBudget(t, fsys, dir, epf, budget)
	defer s.Close()
	for i := 0; i < queues; i++ {
		q := mustQueue(t, s, fmt.Sprint("T", i%20), i/20)
		checkOffsets(t, q, 20, n)
		checkRange(t, q, 20, n)
	}
	if _, peak, _ := fsys.state(); peak > budget {
		t.Fatalf("at most %d files were open, budget %d", peak, budget)
	}
	if open, peak := s.OpenFiles(); open > budget || peak > budget {
		t.Fatalf("OpenFiles = %d, %d; budget %d", open, peak, budget)
	}
}

// TestEvictedDirtyFileSurvivesCrash: with a budget of 2, files written by
// a Flush that did not sync are closed to make room for others; each is
// synced first, so a power loss keeps every entry a later Flush(0)
// reported durable, and the files closed were never dirty.
func TestEvictedDirtyFileSurvivesCrash(t *testing.T) {
	const queues, epf, n = 12, 8, 30
	mem := crashfs.New()
	fsys := &countFS{FS: mem}
	s := openBudget(t, fsys, "/cq", epf, 2)
	for i := 0; i < queues; i++ {
		q := mustQueue(t, s, "T", i)
		putRange(t, q, 0, n)
		// writes without syncing (fewer than 100 dirty pages), then
		// leaves the file open, dirty, for the next queue to evict
		if err := q.Flush(100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	if _, _, dc := fsys.state(); len(dc) > 0 {
		t.Fatalf("files closed with unsynced bytes: %v", dc)
	}
	after := mem.Crash()
	s2 := openBudget(t, after, "/cq", epf, 2)
	defer s2.Close()
	for i := 0; i < queues; i++ {
		q := mustQueue(t, s2, "T", i)
		checkOffsets(t, q, 0, n)
		checkRange(t, q, 0, n)
	}
}

// TestEvictionSyncFailureIsSticky: when the fdatasync that precedes
// closing an evicted file fails, that queue goes out of service (its
// unsynced entries counted as lost) and stays so; its later Flush does not
// report the entries durable through a fresh descriptor.
func TestEvictionSyncFailureIsSticky(t *testing.T) {
	mem := crashfs.New()
	s := openBudget(t, mem, "/cq", 4, 1)
	defer s.Close()
	a, b := mustQueue(t, s, "A", 0), mustQueue(t, s, "B", 0)
	putRange(t, a, 0, 3)
	if err := a.Flush(100); err != nil { // written, not synced, file stays open
		t.Fatal(err)
	}
	mem.Inject(crashfs.Fault{Op: crashfs.OpSync, PathContains: "/A/", Once: true})
	putRange(t, b, 0, 3)
	if err := b.Flush(0); err != nil { // needs A's descriptor
		t.Fatal(err)
	}
	if !a.Broken() || !errors.Is(a.Err(), ErrUnavailable) {
		t.Fatalf("A after its eviction sync failed: Broken %v, Err %v", a.Broken(), a.Err())
	}
	if err := a.Flush(0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("A.Flush(0) = %v, want ErrUnavailable", err)
	}
	if floor := s.LostFloor(); floor != ent(0).CommitLogOffset {
		t.Fatalf("LostFloor = %d, want %d", floor, ent(0).CommitLogOffset)
	}
	checkRange(t, b, 0, 3)
	from, err := a.Reopen()
	if err != nil || from != ent(0).CommitLogOffset {
		t.Fatalf("Reopen = %d, %v", from, err)
	}
	putRange(t, a, 0, 3)
	if err := a.Flush(0); err != nil {
		t.Fatal(err)
	}
	a.MarkRepaired()
	checkRange(t, a, 0, 3)
}

// TestOpenEMFILERetriedAfterEviction: an open failing with EMFILE (other
// files of the process hold the descriptors) closes an idle file and is
// tried again; with nothing to close, or failing twice, the error reaches
// the caller: the writer's queue goes out of service, a reader gets
// ErrUnavailable, and nothing panics.
func TestOpenEMFILERetriedAfterEviction(t *testing.T) {
	fsys := &countFS{FS: vfs.Default()}
	s := openBudget(t, fsys, t.TempDir(), 4, -1)
	defer s.Close()
	a, b := mustQueue(t, s, "A", 0), mustQueue(t, s, "B", 0)
	putRange(t, a, 0, 6)
	if err := a.Flush(0); err != nil {
		t.Fatal(err)
	}
	fsys.failOpens(1)
	putRange(t, b, 0, 3)
	if err := b.Flush(0); err != nil {
		t.Fatalf("Flush after one EMFILE: %v", err)
	}
	if open, _, _ := fsys.state(); open != 2 { // one of A's two files was closed
		t.Fatalf("%d files open, want 2", open)
	}
	checkRange(t, a, 0, 6) // reopens A's file
	fsys.failOpens(2)
	putRange(t, b, 3, 6)
	if err := b.Flush(0); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Flush after two EMFILEs = %v, want ErrUnavailable wrapping EMFILE", err)
	}
	checkRange(t, a, 0, 6)
	if err := s.Close(); err == nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Close = %v, want B's ErrUnavailable reported", err)
	}
}

// TestReadEMFILE: a reader whose file cannot be opened gets
// ErrUnavailable; the queue stays in service.
func TestReadEMFILE(t *testing.T) {
	fsys := &countFS{FS: vfs.Default()}
	s := openBudget(t, fsys, t.TempDir(), 4, 1)
	defer s.Close()
	a, b := mustQueue(t, s, "A", 0), mustQueue(t, s, "B", 0)
	putRange(t, a, 0, 3)
	putRange(t, b, 0, 3)
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	checkRange(t, a, 0, 3)
	fsys.failOpens(2)
	if _, err := b.Read(0, 3, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Read = %v, want ErrUnavailable", err)
	}
	if b.Broken() {
		t.Fatal("a failed read took the queue out of service")
	}
	checkRange(t, b, 0, 3)
}

// TestBudgetConcurrentReadersAndEviction: readers pin files of many queues
// while the writer puts, the flusher flushes, retention removes files and
// the budget of 3 forces evictions all the time (run with -race): every read returns the right entries and never
// more than 3 files are open.
func TestBudgetConcurrentReadersAndEviction(t *testing.T) {
	const queues, epf, budget = 16, 16, 3
	fsys := &countFS{FS: vfs.Default()}
	s := openBudget(t, fsys, t.TempDir(), epf, budget)
	defer s.Close()
	qs := make([]*Queue, queues)
	for i := range qs {
		qs[i] = mustQueue(t, s, "T", i)
	}
	var put atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	var reads atomic.Int64
	for r := 0; r < 4; r++ {
		rng := rand.New(rand.NewSource(int64(r)))
		buf := make([]Entry, 0, 32)
		background(&wg, &done, errc, func(int) error {
			ok, err := readRandom(qs[rng.Intn(queues)], rng, put.Load(), buf)
			if ok {
				reads.Add(1)
			}
			return err
		})
	}
	background(&wg, &done, errc, func(i int) error { return s.Flush(i % 3) })
	background(&wg, &done, errc, func(int) error {
		_, err := s.DeleteBelow(ent(put.Load() / 4).CommitLogOffset)
		return err
	})
	for i := int64(0); i < 400; i++ {
		for _, q := range qs {
			if err := q.Put(i, ent(i)); err != nil {
				t.Fatal(err)
			}
		}
		put.Store(i + 1)
	}
	for deadline := time.Now().Add(10 * time.Second); reads.Load() < 200 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	done.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := s.Flush(0); err != nil {
		t.Fatal(err)
	}
	if _, peak, _ := fsys.state(); peak > budget {
		t.Fatalf("%d files were open at once, budget %d", peak, budget)
	}
	for _, q := range qs {
		checkRange(t, q, q.MinOffset(), 400)
	}
}

// TestOwnEvictionSyncFailure: a Flush whose next file evicts the queue's
// own previous, unsynced file, whose sync fails, must not report the queue
// durable through the sync of the new file.
func TestOwnEvictionSyncFailure(t *testing.T) {
	mem := crashfs.New()
	s := openBudget(t, mem, "/cq", 4, 1)
	defer s.Close()
	a := mustQueue(t, s, "A", 0)
	putRange(t, a, 0, 3)
	if err := a.Flush(100); err != nil {
		t.Fatal(err)
	}
	mem.Inject(crashfs.Fault{Op: crashfs.OpSync, PathContains: "/A/0/00000000000000000000", Once: true})
	putRange(t, a, 3, 6)
	if err := a.Flush(0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Flush(0) = %v, want ErrUnavailable", err)
	}
	from, err := a.Reopen()
	if err != nil || from != ent(0).CommitLogOffset {
		t.Fatalf("Reopen = %d, %v; want %d", from, err, ent(0).CommitLogOffset)
	}
	if got := a.MaxOffset(); got != 0 {
		t.Fatalf("after Reopen MaxOffset = %d, want 0 (nothing was durable)", got)
	}
}

func TestDefaultMaxOpenFiles(t *testing.T) {
	for _, c := range []struct{ nofile, want int }{
		{20000, 10000}, {1024, 512}, {100, 64}, {1 << 20, 65536}, {math.MaxInt, 65536},
	} {
		if got := budgetFor(c.nofile); got != c.want {
			t.Errorf("budget for RLIMIT_NOFILE %d = %d, want %d", c.nofile, got, c.want)
		}
	}
	if got, want := DefaultMaxOpenFiles(), budgetFor(vfs.FileLimit()); got != want {
		t.Errorf("DefaultMaxOpenFiles = %d, want %d", got, want)
	}
}

// TestSyncDirEMFILERetried: a directory sync (it opens the directory)
// failing once with EMFILE is retried after closing an idle file; failing
// twice takes the queue out of service.
func TestSyncDirEMFILERetried(t *testing.T) {
	mem := crashfs.New()
	s := openBudget(t, mem, "/cq", 4, -1)
	defer s.Close()
	a := mustQueue(t, s, "A", 0)
	putRange(t, a, 0, 3)
	if err := a.Flush(0); err != nil {
		t.Fatal(err)
	}
	mem.Inject(crashfs.Fault{Op: crashfs.OpSyncDir, Err: syscall.EMFILE, Once: true})
	putRange(t, a, 3, 6) // a new file: the directory is synced
	if err := a.Flush(0); err != nil {
		t.Fatalf("Flush with one EMFILE on SyncDir: %v", err)
	}
	mem.Inject(crashfs.Fault{Op: crashfs.OpSyncDir, Err: syscall.EMFILE, After: 0})
	putRange(t, a, 6, 10)
	if err := a.Flush(0); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Flush with EMFILE on every SyncDir = %v", err)
	}
}

// TestEMFILEEvictsDirtyFile: when the only idle file holds unsynced
// bytes, an open failing with EMFILE syncs it, closes it and succeeds on
// the retry; the file was not closed dirty.
func TestEMFILEEvictsDirtyFile(t *testing.T) {
	fsys := &countFS{FS: vfs.Default()}
	s := openBudget(t, fsys, t.TempDir(), 4, -1)
	defer s.Close()
	a, b := mustQueue(t, s, "A", 0), mustQueue(t, s, "B", 0)
	putRange(t, a, 0, 3)
	if err := a.Flush(100); err != nil { // written, not synced
		t.Fatal(err)
	}
	fsys.failOpens(1)
	putRange(t, b, 0, 3)
	if err := b.Flush(0); err != nil {
		t.Fatalf("Flush after one EMFILE: %v", err)
	}
	if open, _, dc := fsys.state(); open != 1 || len(dc) > 0 {
		t.Fatalf("%d files open (want 1), closed dirty: %v", open, dc)
	}
	checkRange(t, a, 0, 3)
}

// TestReaderNeverOpensAReplacedFile: a reader looked a file up, its
// descriptor had been closed, and before the reader opens it again the
// queue is emptied and restarted at offset 2, which creates a new file of
// the same name (prefill at 0 and 1). The reader must not read that file
// with the old file's geometry (it would return a prefill entry): it
// answers as of now, ErrBelowMin.
func TestReaderNeverOpensAReplacedFile(t *testing.T) {
	fsys := &countFS{FS: vfs.Default()}
	s := openBudget(t, fsys, t.TempDir(), 4, 2)
	defer s.Close()
	a := mustQueue(t, s, "A", 0)
	for _, q := range []*Queue{a, mustQueue(t, s, "B", 0), mustQueue(t, s, "C", 0)} {
		putRange(t, q, 0, 3)
		if err := q.Flush(0); err != nil { // the third closes A's file
			t.Fatal(err)
		}
	}
	var once sync.Once
	fsys.mu.Lock()
	fsys.onOpen = func(name string) {
		if !strings.Contains(name, "/A/0/") {
			return
		}
		once.Do(func() {
			fsys.mu.Lock()
			fsys.onOpen = nil
			fsys.mu.Unlock()
			if err := a.TruncateTo(0); err != nil {
				t.Error(err)
			}
			putRange(t, a, 2, 4)
			if err := a.Flush(0); err != nil {
				t.Error(err)
			}
		})
	}
	fsys.mu.Unlock()
	got, err := a.Read(0, 3, nil)
	if !errors.Is(err, ErrBelowMin) {
		t.Fatalf("Read(0) after the file was replaced = %+v, %v; want ErrBelowMin", got, err)
	}
	checkOffsets(t, a, 2, 4)
	checkRange(t, a, 2, 4)
}
