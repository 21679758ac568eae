package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/mqd/mqd/internal/uring"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// The conformance suite: every test runs against every backend.

type backend struct {
	name string
	open func(t *testing.T) (fsys vfs.FS, dir string)
}

var backends = []backend{
	{"pwrite", func(t *testing.T) (vfs.FS, string) { return vfs.Default(), t.TempDir() }},
	{"io_uring", func(t *testing.T) (vfs.FS, string) { return openUring(t), t.TempDir() }},
	{"crashfs", func(t *testing.T) (vfs.FS, string) {
		fsys := crashfs.New()
		if err := fsys.MkdirAll("/data"); err != nil {
			t.Fatal(err)
		}
		return fsys, "/data"
	}},
}

// openUring returns the io_uring backend, skipping the test only when
// io_uring is unavailable here.
func openUring(t *testing.T) vfs.FS {
	t.Helper()
	fsys, err := vfs.NewUring(64)
	if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) || errors.Is(err, uring.ErrUnsupported) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return fsys
}

func forEachBackend(t *testing.T, fn func(t *testing.T, fsys vfs.FS, dir string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fsys, dir := b.open(t)
			if fsys.Backend() != b.name {
				t.Fatalf("Backend() = %q", fsys.Backend())
			}
			fn(t, fsys, dir)
		})
	}
}

func create(t *testing.T, fsys vfs.FS, name string) vfs.File {
	t.Helper()
	f, err := fsys.Open(name, vfs.Create)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f vfs.File) []byte {
	t.Helper()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatalf("ReadAt whole file: %v", err)
	}
	return b
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateWriteRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		name := filepath.Join(dir, "a")
		f := create(t, fsys, name)
		if f.Name() != name {
			t.Fatalf("Name() = %q", f.Name())
		}
		if n, err := f.WriteAt([]byte("hello world"), 3); err != nil || n != 11 {
			t.Fatalf("WriteAt = %d, %v", n, err)
		}
		if n, err := f.WriteAt(nil, 0); err != nil || n != 0 {
			t.Fatalf("empty WriteAt = %d, %v", n, err)
		}
		if got := readAll(t, f); string(got) != "\x00\x00\x00hello world" {
			t.Fatalf("content %q", got)
		}
		check(t, f.Sync())
		ro, err := fsys.Open(name, vfs.ReadOnly)
		check(t, err)
		defer ro.Close()
		buf := make([]byte, 5)
		if n, err := ro.ReadAt(buf, 9); err != nil || string(buf[:n]) != "world" {
			t.Fatalf("ReadAt on read-only = %q, %v", buf[:n], err)
		}
		if _, err := ro.WriteAt([]byte("x"), 0); err == nil {
			t.Fatal("WriteAt on a read-only file succeeded")
		}
	})
}

func TestWritevAndSync(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := create(t, fsys, filepath.Join(dir, "v"))
		check(t, f.Writev([][]byte{[]byte("ab"), nil, []byte("cde")}, 0))
		check(t, f.WritevSync([][]byte{[]byte("XY"), []byte("Z")}, 5))
		check(t, f.WritevSync(nil, 0)) // a bare sync
		check(t, f.Writev(nil, 100))   // nothing to write
		check(t, f.Sync())
		if got := readAll(t, f); string(got) != "abcdeXYZ" {
			t.Fatalf("content %q", got)
		}
	})
}

func TestTruncateSize(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := create(t, fsys, filepath.Join(dir, "t"))
		_, err := f.WriteAt([]byte("0123456789"), 0)
		check(t, err)
		check(t, f.Truncate(4))
		if size, err := f.Size(); err != nil || size != 4 {
			t.Fatalf("Size after shrink = %d, %v", size, err)
		}
		check(t, f.Truncate(8))
		if got := readAll(t, f); string(got) != "0123\x00\x00\x00\x00" {
			t.Fatalf("content %q", got)
		}
	})
}

func TestDirectoryOps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		sub := filepath.Join(dir, "x", "y")
		check(t, fsys.MkdirAll(sub))
		check(t, fsys.MkdirAll(sub)) // exists: fine
		for _, n := range []string{"b", "a", "c"} {
			f := create(t, fsys, filepath.Join(sub, n))
			_, err := f.WriteAt([]byte(n+n), 0)
			check(t, err)
		}
		check(t, fsys.MkdirAll(filepath.Join(sub, "d")))
		names, err := fsys.List(sub)
		if err != nil || fmt.Sprint(names) != "[a b c d]" {
			t.Fatalf("List = %v, %v", names, err)
		}
		check(t, fsys.Rename(filepath.Join(sub, "a"), filepath.Join(sub, "c"))) // replaces c
		check(t, fsys.Remove(filepath.Join(sub, "b")))
		check(t, fsys.SyncDir(sub))
		if names, _ = fsys.List(sub); fmt.Sprint(names) != "[c d]" {
			t.Fatalf("List after rename/remove = %v", names)
		}
		st, err := fsys.Stat(filepath.Join(sub, "c"))
		if err != nil || st.Size() != 2 || st.IsDir() || st.Name() != "c" {
			t.Fatalf("Stat(c) = %+v, %v", st, err)
		}
		if st, err = fsys.Stat(filepath.Join(sub, "d")); err != nil || !st.IsDir() {
			t.Fatalf("Stat(d) = %+v, %v", st, err)
		}
		missing := filepath.Join(sub, "a")
		if _, err := fsys.Stat(missing); !vfs.IsNotExist(err) {
			t.Fatalf("Stat(missing) = %v", err)
		}
		if _, err := fsys.Open(missing, 0); !vfs.IsNotExist(err) {
			t.Fatalf("Open(missing) = %v", err)
		}
		if err := fsys.Remove(missing); !vfs.IsNotExist(err) {
			t.Fatalf("Remove(missing) = %v", err)
		}
		if _, err := fsys.List(filepath.Join(dir, "nope")); !vfs.IsNotExist(err) {
			t.Fatalf("List(missing) = %v", err)
		}
	})
}

func TestReadPastEOF(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := create(t, fsys, filepath.Join(dir, "e"))
		_, err := f.WriteAt([]byte("abcd"), 0)
		check(t, err)
		buf := make([]byte, 8)
		if n, err := f.ReadAt(buf, 2); n != 2 || err != io.EOF || string(buf[:2]) != "cd" {
			t.Fatalf("ReadAt across EOF = %d, %v", n, err)
		}
		if n, err := f.ReadAt(buf, 4); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt at EOF = %d, %v", n, err)
		}
		if n, err := f.ReadAt(buf, 100); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt past EOF = %d, %v", n, err)
		}
	})
}

func TestUseAfterClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f, err := fsys.Open(filepath.Join(dir, "c"), vfs.Create)
		check(t, err)
		check(t, f.Close())
		if _, err := f.WriteAt([]byte("x"), 0); err == nil {
			t.Error("WriteAt after Close succeeded")
		}
		if _, err := f.ReadAt(make([]byte, 1), 0); err == nil || err == io.EOF {
			t.Errorf("ReadAt after Close = %v", err)
		}
		if err := f.Sync(); err == nil {
			t.Error("Sync after Close succeeded")
		}
		if err := f.WritevSync([][]byte{[]byte("x")}, 0); err == nil {
			t.Error("WritevSync after Close succeeded")
		}
		if err := f.Writev([][]byte{[]byte("x")}, 0); err == nil {
			t.Error("Writev after Close succeeded")
		}
	})
}

func TestDirectIO(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f, err := fsys.Open(filepath.Join(dir, "d"), vfs.Create|vfs.Direct)
		check(t, err)
		defer f.Close()
		t.Logf("DirectIO = %v", fsys.DirectIO(f))
		a, err := vfs.AlignedBuffer(2 * vfs.Alignment)
		check(t, err)
		defer vfs.FreeAligned(a)
		b, err := vfs.AlignedBuffer(vfs.Alignment)
		check(t, err)
		defer vfs.FreeAligned(b)
		for i := range a {
			a[i] = byte(i % 251)
		}
		copy(b, bytes.Repeat([]byte("B"), len(b)))
		_, err = f.WriteAt(a, vfs.Alignment)
		check(t, err)
		check(t, f.WritevSync([][]byte{b, a}, 3*vfs.Alignment))
		check(t, fsys.Preallocate(f, 16*vfs.Alignment))
		got, err := vfs.AlignedBuffer(16 * vfs.Alignment)
		check(t, err)
		defer vfs.FreeAligned(got)
		if n, err := f.ReadAt(got, 0); err != nil || n != len(got) {
			t.Fatalf("aligned ReadAt = %d, %v", n, err)
		}
		want := make([]byte, 16*vfs.Alignment)
		copy(want[vfs.Alignment:], a)
		copy(want[3*vfs.Alignment:], b)
		copy(want[4*vfs.Alignment:], a)
		if !bytes.Equal(got, want) {
			t.Fatal("O_DIRECT content differs")
		}
	})
}

func TestConcurrentWritevSync(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const writers, rounds, block = 32, 8, 1024
		f := create(t, fsys, filepath.Join(dir, "cc"))
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					head := bytes.Repeat([]byte{byte(w)}, block/2)
					tail := bytes.Repeat([]byte{byte(r)}, block/2)
					off := int64((w*rounds + r) * block)
					if err := f.WritevSync([][]byte{head, tail}, off); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got := readAll(t, f)
		if len(got) != writers*rounds*block {
			t.Fatalf("size %d", len(got))
		}
		for w := range writers {
			for r := range rounds {
				blk := got[(w*rounds+r)*block:][:block]
				if !bytes.Equal(blk[:block/2], bytes.Repeat([]byte{byte(w)}, block/2)) ||
					!bytes.Equal(blk[block/2:], bytes.Repeat([]byte{byte(r)}, block/2)) {
					t.Fatalf("writer %d round %d: wrong block", w, r)
				}
			}
		}
	})
}

func TestMap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := create(t, fsys, filepath.Join(dir, "m"))
		check(t, f.Truncate(8192))
		_, err := f.WriteAt([]byte("abc"), 100)
		check(t, err)
		m, err := fsys.Map(f, 8192, true)
		check(t, err)
		b := m.Bytes()
		if len(b) != 8192 || string(b[100:103]) != "abc" {
			t.Fatalf("mapping: len %d, %q", len(b), b[100:103])
		}
		copy(b[5000:], "mapped")
		check(t, m.WriteBack(4096, 4096))
		check(t, m.Sync())
		check(t, m.Close())
		if err := m.WriteBack(0, 8192); err == nil {
			t.Fatal("WriteBack after Close succeeded")
		}
		got := make([]byte, 6)
		if _, err := f.ReadAt(got, 5000); err != nil || string(got) != "mapped" {
			t.Fatalf("ReadAt after mapped write = %q, %v", got, err)
		}
		ro, err := fsys.Map(f, 4096, false)
		check(t, err)
		if string(ro.Bytes()[100:103]) != "abc" {
			t.Fatal("read-only mapping content")
		}
		check(t, ro.Close())
	})
}

func TestPreallocate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := create(t, fsys, filepath.Join(dir, "p"))
		_, err := f.WriteAt([]byte("hello"), 0)
		check(t, err)
		const size = 3<<20 + 8192 // several zero-fill chunks
		check(t, fsys.Preallocate(f, size))
		got := readAll(t, f)
		if len(got) != size || string(got[:5]) != "hello" {
			t.Fatalf("after Preallocate: size %d, head %q", len(got), got[:5])
		}
		if !bytes.Equal(got[5:], make([]byte, size-5)) {
			t.Fatal("Preallocate left non-zero bytes")
		}
		check(t, fsys.Preallocate(f, 4096)) // smaller: no shrink
		if n, _ := f.Size(); n != size {
			t.Fatalf("Preallocate shrank the file to %d", n)
		}
	})
}
