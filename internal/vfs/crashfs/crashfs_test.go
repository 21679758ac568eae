package crashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/vfs"
)

func newFS(t *testing.T) *FS {
	t.Helper()
	f := New()
	if err := f.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	return f
}

func open(t *testing.T, f *FS, name string) vfs.File {
	t.Helper()
	file, err := f.Open(name, vfs.Create)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func write(t *testing.T, file vfs.File, s string, off int64) {
	t.Helper()
	if _, err := file.WriteAt([]byte(s), off); err != nil {
		t.Fatal(err)
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// content returns the current content of name, or "<missing>".
func content(t *testing.T, f *FS, name string) string {
	t.Helper()
	file, err := f.Open(name, vfs.ReadOnly)
	if vfs.IsNotExist(err) {
		return "<missing>"
	}
	ok(t, err)
	defer file.Close()
	size, _ := file.Size()
	b := make([]byte, size)
	if _, err := file.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return string(b)
}

func TestCrashKeepsOnlySyncedData(t *testing.T) {
	f := newFS(t)
	a := open(t, f, "/d/a")
	ok(t, f.SyncDir("/d"))
	write(t, a, "synced", 0)
	ok(t, a.Sync())
	write(t, a, "SYN", 0)       // unsynced overwrite
	write(t, a, "+unsynced", 6) // unsynced append
	ok(t, a.Truncate(20))       // unsynced resize
	if got := content(t, f, "/d/a"); got != "SYNced+unsynced\x00\x00\x00\x00\x00" {
		t.Fatalf("before crash %q", got)
	}
	g := f.Crash()
	if got := content(t, g, "/d/a"); got != "synced" {
		t.Fatalf("after crash %q, want the synced bytes only", got)
	}
	if _, err := a.WriteAt([]byte("x"), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("old file after crash: %v", err)
	}
	if _, err := f.Open("/d/a", 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("old FS after crash: %v", err)
	}
	ok(t, a.Close()) // closing a handle of a crashed FS is fine
}

// KillProcess keeps what was written, synced or not, and the namespace;
// the unsynced part stays unsynced, so a power loss afterwards drops it,
// unless the next process synced it.
func TestKillProcessKeepsThePageCache(t *testing.T) {
	f := newFS(t)
	a := open(t, f, "/d/a")
	b := open(t, f, "/d/b")
	ok(t, f.SyncDir("/d"))
	write(t, a, "synced", 0)
	ok(t, a.Sync())
	write(t, a, "+unsynced", 6)
	write(t, b, "b unsynced", 0)
	c := open(t, f, "/d/c") // its directory entry is not durable
	write(t, c, "c", 0)
	g := f.KillProcess()
	if _, err := a.WriteAt([]byte("x"), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("the dead process's file after the kill: %v", err)
	}
	for name, want := range map[string]string{"/d/a": "synced+unsynced", "/d/b": "b unsynced", "/d/c": "c"} {
		if got := content(t, g, name); got != want {
			t.Fatalf("%s after the kill %q, want %q", name, got, want)
		}
	}
	b2, err := g.Open("/d/b", 0)
	ok(t, err)
	ok(t, b2.Sync()) // the next process syncs b, not a
	h := g.Crash()
	if got := content(t, h, "/d/a"); got != "synced" {
		t.Fatalf("a after the kill then a power loss %q, want the synced bytes only", got)
	}
	if got := content(t, h, "/d/b"); got != "b unsynced" {
		t.Fatalf("b, synced after the kill, then a power loss %q", got)
	}
	if _, err := h.Stat("/d/c"); err == nil {
		t.Fatal("c's entry survived a power loss without a directory sync")
	}
}

// WritevSync is durable by itself; Preallocate, like a write, only with
// the file's next Sync.
func TestWritevSyncDurablePreallocateNeedsSync(t *testing.T) {
	f := newFS(t)
	a, b, c := open(t, f, "/d/a"), open(t, f, "/d/b"), open(t, f, "/d/c")
	ok(t, f.SyncDir("/d"))
	ok(t, a.WritevSync([][]byte{[]byte("one"), []byte("two")}, 0))
	write(t, b, "pre", 0)
	ok(t, f.Preallocate(b, 8))
	ok(t, b.Sync())
	ok(t, f.Preallocate(c, 8))
	g := f.Crash()
	if got := content(t, g, "/d/a"); got != "onetwo" {
		t.Fatalf("WritevSync data %q", got)
	}
	if got := content(t, g, "/d/b"); got != "pre\x00\x00\x00\x00\x00" {
		t.Fatalf("preallocated and synced file %q", got)
	}
	if got := content(t, g, "/d/c"); got != "" {
		t.Fatalf("preallocated file never synced survived as %q", got)
	}
}

func TestDirEntriesNeedSyncDir(t *testing.T) {
	f := newFS(t)
	ok(t, f.MkdirAll("/d/sub"))
	for _, n := range []string{"/d/kept", "/d/removed", "/d/renamed", "/d/sub/lost"} {
		file := open(t, f, n)
		write(t, file, n, 0)
		ok(t, file.Sync())
		ok(t, file.Close())
	}
	ok(t, f.SyncDir("/d"))
	ok(t, f.Remove("/d/removed"))              // not dir-synced: comes back
	ok(t, f.Rename("/d/renamed", "/d/new"))    // not dir-synced: old name
	ok(t, f.Rename("/d/kept", "/d/sub/moved")) // /d/sub never synced
	g := f.Crash()
	for name, want := range map[string]string{
		"/d/kept": "/d/kept", "/d/removed": "/d/removed", "/d/renamed": "/d/renamed",
		"/d/new": "<missing>", "/d/sub/lost": "<missing>", "/d/sub/moved": "<missing>",
	} {
		if got := content(t, g, name); got != want {
			t.Errorf("%s after crash = %q, want %q", name, got, want)
		}
	}
	names, err := g.List("/d")
	if err != nil || fmt.Sprint(names) != "[kept removed renamed sub]" {
		t.Fatalf("List = %v, %v", names, err)
	}

	// Now with SyncDir after the changes: they survive.
	ok(t, g.Remove("/d/removed"))
	ok(t, g.Rename("/d/renamed", "/d/new"))
	ok(t, g.SyncDir("/d"))
	h := g.Crash()
	if content(t, h, "/d/removed") != "<missing>" || content(t, h, "/d/new") != "/d/renamed" ||
		content(t, h, "/d/renamed") != "<missing>" {
		t.Fatal("dir-synced remove/rename did not survive")
	}
}

// TestRemovedDirComesBack: a durable entry whose file and directory were
// removed without SyncDir reappears, directory included.
func TestRemovedDirComesBack(t *testing.T) {
	f := newFS(t)
	ok(t, f.MkdirAll("/d/x"))
	file := open(t, f, "/d/x/f")
	ok(t, file.Close())
	ok(t, f.SyncDir("/d/x"))
	ok(t, f.Remove("/d/x/f"))
	ok(t, f.Remove("/d/x"))
	g := f.Crash()
	if names, err := g.List("/d/x"); err != nil || fmt.Sprint(names) != "[f]" {
		t.Fatalf("List(/d/x) after crash = %v, %v", names, err)
	}
}

func TestInjectedFaults(t *testing.T) {
	f := newFS(t)
	f.Inject(Fault{Op: OpWrite, PathContains: "log", Err: syscall.EIO, After: 2})
	f.Inject(Fault{Op: OpSync, PathContains: "log", Err: syscall.ENOSPC, Once: true})
	log, other := open(t, f, "/d/log"), open(t, f, "/d/other")
	write(t, log, "1", 0)
	write(t, log, "2", 1)
	_, err := log.WriteAt([]byte("3"), 2)
	var pe *fs.PathError
	if !errors.Is(err, syscall.EIO) || !errors.As(err, &pe) || pe.Path != "/d/log" {
		t.Fatalf("third write = %v, want EIO *fs.PathError", err)
	}
	if err := log.WritevSync([][]byte{[]byte("x")}, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("WritevSync = %v, want EIO (write fault stays)", err)
	}
	write(t, other, "fine", 0) // other paths unaffected
	if err := log.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync = %v, want ENOSPC", err)
	}
	ok(t, log.Sync()) // Once: gone
	f.Inject(Fault{Op: OpOpen | OpSyncDir | OpRename})
	if _, err := f.Open("/d/x", vfs.Create); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Open = %v", err)
	}
	if err := f.SyncDir("/d"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("SyncDir = %v", err)
	}
	f.ClearFaults()
	write(t, log, "ok", 0)
	ok(t, f.Rename("/d/log", "/d/log2"))
}

func TestDiskFull(t *testing.T) {
	f := newFS(t)
	a := open(t, f, "/d/a")
	write(t, a, "0123456789", 0)
	f.SetBudget(5)
	write(t, a, "abcdefghij", 0) // overwrite: no new space
	n, err := a.WriteAt([]byte("ABCDEFGH"), 10)
	if n != 5 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past budget = %d, %v; want 5, ENOSPC", n, err)
	}
	if got := content(t, f, "/d/a"); got != "abcdefghijABCDE" {
		t.Fatalf("content %q", got)
	}
	if err := f.Preallocate(a, 4096); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Preallocate on a full disk = %v", err)
	}
	if err := a.Truncate(100); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Truncate on a full disk = %v", err)
	}
	ok(t, a.Close())
	ok(t, f.Remove("/d/a")) // frees its bytes
	if f.Used() != 0 {
		t.Fatalf("Used = %d after removing the only file", f.Used())
	}
	b := open(t, f, "/d/b")
	write(t, b, "0123456789abcde", 0)
	f.SetCapacity(-1)
	write(t, b, "unlimited again", 15)
}

// TestTornWritePrefixes checks, over many seeds, that CrashWith keeps
// only prefixes of unsynced writes over the durable content.
func TestTornWritePrefixes(t *testing.T) {
	durable := bytes.Repeat([]byte("D"), 1000)
	update := bytes.Repeat([]byte("U"), 600)
	appended := bytes.Repeat([]byte("A"), 300)
	lengths := map[int]bool{}
	for seed := range uint64(200) {
		f := newFS(t)
		a := open(t, f, "/d/a")
		ok(t, f.SyncDir("/d"))
		_, _ = a.WriteAt(durable, 0)
		ok(t, a.Sync())
		_, _ = a.WriteAt(update, 200)
		_, _ = a.WriteAt(appended, 1000)
		g := f.CrashWith(CrashOptions{Rand: rand.New(rand.NewPCG(seed, 1)), KeepUnsyncedProb: 0.7})
		got := []byte(content(t, g, "/d/a"))
		k := bytes.IndexByte(append(got[200:800:800], 'D'), 'D') // kept prefix of update
		want := append([]byte(nil), durable...)
		copy(want[200:], update[:k])
		want = append(want, appended[:len(got)-1000]...)
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: content is not durable data plus write prefixes", seed)
		}
		lengths[len(got)] = true
	}
	if len(lengths) < 10 {
		t.Fatalf("only %d distinct outcomes: the tearing is not random", len(lengths))
	}
}

func TestTornSectors(t *testing.T) {
	f := newFS(t)
	a := open(t, f, "/d/a")
	ok(t, f.SyncDir("/d"))
	_, _ = a.WriteAt(bytes.Repeat([]byte("D"), 8*SectorSize), 0)
	ok(t, a.Sync())
	_, _ = a.WriteAt(bytes.Repeat([]byte("U"), 6*SectorSize), SectorSize)
	g := f.CrashWith(CrashOptions{Rand: rand.New(rand.NewPCG(7, 7)), KeepUnsyncedProb: 0.5, Sectors: true})
	got := content(t, g, "/d/a")
	kinds := map[string]bool{}
	for s := range 8 {
		sec := got[s*SectorSize : (s+1)*SectorSize]
		if sec != strings.Repeat(sec[:1], SectorSize) || (s == 0 || s == 7) && sec[0] != 'D' {
			t.Fatalf("sector %d is torn inside or changed without a write", s)
		}
		kinds[sec[:1]] = true
	}
	if !kinds["U"] || !kinds["D"] {
		t.Fatalf("seed gave no mix of kept and lost sectors: %v", kinds)
	}
}

func TestMapDurability(t *testing.T) {
	f := newFS(t)
	a := open(t, f, "/d/a")
	ok(t, f.SyncDir("/d"))
	ok(t, a.Truncate(64))
	m, err := f.Map(a, 64, true)
	ok(t, err)
	copy(m.Bytes()[10:], "synced")
	ok(t, m.Sync())
	copy(m.Bytes()[20:], "lost")
	if _, err := a.WriteAt([]byte("grow"), 62); err == nil {
		t.Fatal("a mapped file grew")
	}
	if err := a.Truncate(32); err == nil {
		t.Fatal("a mapped file shrank")
	}
	write(t, a, "W", 0) // in place is fine, and visible through the mapping
	if m.Bytes()[0] != 'W' {
		t.Fatal("write not visible through the mapping")
	}
	g := f.Crash()
	got := content(t, g, "/d/a")
	if got[10:16] != "synced" || got[20:24] != "\x00\x00\x00\x00" || got[0] != 0 {
		t.Fatalf("after crash %q", got)
	}
	ok(t, m.Close())
	if _, err := f.Map(a, 65, false); err == nil {
		t.Fatal("mapping past EOF succeeded")
	}
}

// TestConcurrentUse runs writers, syncs and namespace operations in
// parallel (for -race) and crashes mid-flight: every error must be
// ErrCrashed.
func TestConcurrentUse(t *testing.T) {
	f := newFS(t)
	var wg, started sync.WaitGroup
	for w := range 8 {
		file := open(t, f, fmt.Sprintf("/d/f%d", w))
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if i == 20 {
					started.Done()
				}
				err := file.WritevSync([][]byte{[]byte("abc")}, int64(i*3))
				if err == nil {
					_, err = f.List("/d")
				}
				if err == nil {
					err = f.SyncDir("/d")
				}
				if err != nil && !errors.Is(err, ErrCrashed) {
					t.Error(err)
				}
			}
			_ = file.Close()
		}()
	}
	started.Wait()
	g := f.Crash()
	wg.Wait()
	names, err := g.List("/d")
	if err != nil || len(names) != 8 {
		t.Fatalf("List after crash = %v, %v", names, err)
	}
}

// Files carry the time of their last change, as Linux keeps it, across a
// crash: time-based retention treats the zero time as long expired.
func TestModTime(t *testing.T) {
	f := newFS(t)
	a := open(t, f, "/d/a")
	ok(t, f.SyncDir("/d"))
	mtime := func(fs *FS) time.Time {
		t.Helper()
		st, err := fs.Stat("/d/a")
		if err != nil {
			t.Fatal(err)
		}
		return st.ModTime()
	}
	created := mtime(f)
	if created.IsZero() || time.Since(created) > time.Minute {
		t.Fatalf("new file's ModTime %v", created)
	}
	time.Sleep(2 * time.Millisecond)
	write(t, a, "x", 0)
	ok(t, a.Sync())
	written := mtime(f)
	if !written.After(created) {
		t.Fatalf("ModTime %v did not advance on write (created %v)", written, created)
	}
	if got := mtime(f.Crash()); !got.Equal(written) {
		t.Fatalf("ModTime after crash %v, want %v", got, written)
	}
}

// Gated syncs wait while held (other files' syncs do not), and take the
// gate's delay each.
func TestSyncGate(t *testing.T) {
	f := newFS(t)
	a, b := open(t, f, "/d/gated"), open(t, f, "/d/free")
	f.GateSyncs("gated", 0)
	f.HoldSyncs()
	done := make(chan error, 1)
	go func() { done <- a.Sync() }()
	ok(t, b.Sync()) // not gated: goes on
	select {
	case err := <-done:
		t.Fatalf("held sync returned %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	f.ReleaseSyncs()
	ok(t, <-done)
	f.GateSyncs("gated", 30*time.Millisecond)
	began := time.Now()
	ok(t, a.WritevSync([][]byte{[]byte("x")}, 0))
	if took := time.Since(began); took < 30*time.Millisecond {
		t.Fatalf("gated WritevSync took %v, want the 30 ms delay", took)
	}
}
