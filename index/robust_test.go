package index

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqd/mqd/internal/vfs"
)

// filled returns a closed index directory with n messages of key "k" and
// key "u<i>" in files of the given geometry.
func filled(t testing.TB, slots, entries, n int) string {
	t.Helper()
	dir := t.TempDir()
	s := openSvc(t, dir, small(slots, entries))
	for i := int64(0); i < int64(n); i++ {
		put(t, s, "T", i*100, t0+i*1000, "k", fmt.Sprint("u", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func names(t testing.TB, dir string) []string {
	t.Helper()
	n, err := vfs.Default().List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func edit(t testing.TB, name string, fn func(f vfs.File) error) {
	t.Helper()
	f, err := vfs.Default().Open(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fn(f); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedFiles(t *testing.T) {
	cfg := small(8, 4)
	size := layout{slots: 8, maxIndex: 4}.size()
	cases := []struct {
		name  string
		which int // file index in the directory listing
		fn    func(f vfs.File) error
	}{
		{"older file too short", 0, func(f vfs.File) error { return f.Truncate(size - 1) }},
		{"newest file too long", 2, func(f vfs.File) error { return f.Truncate(size + 20) }},
		{"newest short with entries", 2, func(f vfs.File) error { return f.Truncate(100) }},
		{"indexCount too big", 1, func(f vfs.File) error {
			_, err := f.WriteAt([]byte{0, 0, 0, 5}, 36)
			return err
		}},
		{"indexCount negative", 1, func(f vfs.File) error {
			_, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, 36)
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filled(t, 8, 4, 4) // 3 files of 3, 3 and 2 keys
			edit(t, filepath.Join(dir, names(t, dir)[c.which]), c.fn)
			s, err := Open(vfs.Default(), dir, cfg)
			if !errors.Is(err, ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open err = %v, want ErrCorrupt", err)
			}
		})
	}
	dir := filled(t, 8, 4, 2)
	f, err := vfs.Default().Open(filepath.Join(dir, "notes.txt"), vfs.Create)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open(vfs.Default(), dir, cfg); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a stray file: %v", err)
	}
}

func TestUnfinishedNewestFileRemoved(t *testing.T) {
	for _, size := range []int64{0, 17, 60} {
		dir := filled(t, 8, 4, 2) // 2 files: 3 keys, then 1
		newest := filepath.Join(dir, names(t, dir)[1])
		edit(t, newest, func(f vfs.File) error {
			if err := f.Truncate(0); err != nil {
				return err
			}
			return f.Truncate(size) // zeros: no entry in the header
		})
		s := openSvc(t, dir, small(8, 4))
		if got := names(t, dir); len(got) != 1 {
			t.Fatalf("size %d: files = %v, want the unfinished one removed", size, got)
		}
		expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 0, 100)
		expect(t, query(t, s, "T", "u1", 64, 0, math.MaxInt64)) // was in the removed file
		s.Close()
	}
}

// TestCorruptBytesNeverPanic overwrites random bytes of the slot table and
// entries and queries every key: a walk must end without panicking.
func TestCorruptBytesNeverPanic(t *testing.T) {
	dir := filled(t, 4, 64, 40)
	name := filepath.Join(dir, names(t, dir)[0])
	rng := rand.New(rand.NewSource(1))
	size := layout{slots: 4, maxIndex: 64}.size()
	for round := 0; round < 20; round++ {
		edit(t, name, func(f vfs.File) error {
			b := make([]byte, 4)
			for i := 0; i < 16; i++ {
				rng.Read(b)
				if _, err := f.WriteAt(b, HeaderSize+rng.Int63n(size-HeaderSize-4)); err != nil {
					return err
				}
			}
			return nil
		})
		s := openSvc(t, dir, small(4, 64))
		for i := 0; i < 40; i++ {
			if _, _, _, err := s.Query("T", fmt.Sprint("u", i), 64, 0, math.MaxInt64); err != nil {
				t.Fatal(err)
			}
		}
		put(t, s, "T", 1<<40+int64(round), t0, "k") // writing over garbage is bounded too
		s.Close()
	}
}

// TestConcurrentPutQuery runs the dispatcher, the flusher, retention and
// readers together; run it with -race.
func TestConcurrentPutQuery(t *testing.T) {
	const n = 3000
	s := openSvc(t, t.TempDir(), small(64, 256))
	defer s.Close()
	var put atomic.Int64
	// cut is the highest bound retention was asked to delete below: a key
	// whose offset is below it may be gone legitimately (a checker stalled
	// on a loaded machine while puts and retention ran far ahead).
	var cut atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	run := func(fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				if err := fn(); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		for i := int64(0); i < n; i++ {
			if err := s.Put("T", []string{fmt.Sprint("u", i), "k"}, i*100, t0+i*10); err != nil {
				errc <- err
				return
			}
			put.Store(i + 1)
		}
	}()
	run(func() error { _, err := s.Flush(); return err })
	run(func() error {
		below := put.Load() * 50
		cut.Store(below) // before deleting: a checker seeing a hole sees the bound too
		_, err := s.DeleteFilesBelow(below)
		return err
	})
	for r := 0; r < 3; r++ {
		rng := rand.New(rand.NewSource(int64(r)))
		run(func() error { return checkLatest(s, rng, put.Load(), &cut) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// checkLatest queries the unique key of a recently put message (retention
// keeps the newest half) and expects exactly its offset; no result is
// accepted only when retention has since been asked to delete below it.
func checkLatest(s *Service, rng *rand.Rand, put int64, cut *atomic.Int64) error {
	if put < 10 {
		return nil
	}
	i := put - 1 - rng.Int63n(5)
	got, _, _, err := s.Query("T", fmt.Sprint("u", i), 4, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	if len(got) == 0 && cut.Load() > i*100 {
		return nil // its file was deleted while the query ran
	}
	if len(got) != 1 || got[0] != i*100 {
		return fmt.Errorf("query u%d = %v, want [%d]", i, got, i*100)
	}
	return nil
}

// syncFailFS makes Mapping.Sync fail on demand.
type syncFailFS struct {
	vfs.FS
	fail atomic.Bool
}

type syncFailMapping struct {
	vfs.Mapping
	fs *syncFailFS
}

func (f *syncFailFS) Map(file vfs.File, size int64, writable bool) (vfs.Mapping, error) {
	m, err := f.FS.Map(file, size, writable)
	if err != nil {
		return nil, err
	}
	return syncFailMapping{Mapping: m, fs: f}, nil
}

func (m syncFailMapping) Sync() error {
	if m.fs.fail.Load() {
		return errors.New("injected msync error")
	}
	return m.Mapping.Sync()
}

func TestFlushErrorIsSticky(t *testing.T) {
	fsys := &syncFailFS{FS: vfs.Default()}
	s, err := Open(fsys, t.TempDir(), small(8, 4))
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 4; i++ {
		put(t, s, "T", i*100, t0+i*1000, "k")
	}
	fsys.fail.Store(true)
	if ts, err := s.Flush(); err == nil || ts != 0 {
		t.Fatalf("Flush = %d, %v; want the msync error", ts, err)
	}
	fsys.fail.Store(false)
	if _, err := s.Flush(); err == nil {
		t.Fatal("Flush after a failed msync reported success")
	}
	put(t, s, "T", 500, t0+5000, "k") // the index keeps serving
	expect(t, query(t, s, "T", "k", 64, 0, math.MaxInt64), 0, 100, 200, 300, 500)
	if err := s.Close(); err == nil {
		t.Fatal("Close hid the msync error")
	}
}
