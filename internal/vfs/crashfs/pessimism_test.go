package crashfs

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
	"unsafe"

	"github.com/mqd/mqd/internal/vfs"
)

// readAll returns the content of name on f.
func readAll(t *testing.T, f *FS, name string) []byte {
	t.Helper()
	file, err := f.Open(name, vfs.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	n, _ := file.Size()
	b := make([]byte, n)
	if n > 0 {
		if _, err := file.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestFailedSyncDropsPendingWrites: after a failed fdatasync the writes it
// covered never become durable, not even through a later successful sync,
// and a crash keeping every unsynced byte keeps none of them; writes after
// the failure are synced normally.
func TestFailedSyncDropsPendingWrites(t *testing.T) {
	f := newFS(t)
	file := open(t, f, "/d/a")
	write(t, file, "durable-", 0)
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	write(t, file, "LOST", 8)
	f.Inject(Fault{Op: OpSync, Once: true})
	if err := file.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync: %v", err)
	}
	if got := readAll(t, f, "/d/a"); string(got) != "durable-LOST" {
		t.Fatalf("the page cache still shows the write: got %q", got)
	}
	write(t, file, "kept", 12)
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
	after := f.CrashWith(CrashOptions{Rand: nil})
	got := readAll(t, after, "/d/a")
	if string(got[:8]) != "durable-" || !bytes.Equal(got[8:12], make([]byte, 4)) || string(got[12:]) != "kept" {
		t.Fatalf("after the crash: %q (the write before the failed sync must be gone)", got)
	}
}

// TestDirectIOAlignment: a vfs.Direct file refuses unaligned offsets,
// lengths and buffers with EINVAL and writes nothing; aligned I/O works.
func TestDirectIOAlignment(t *testing.T) {
	f := newFS(t)
	file, err := f.Open("/d/direct", vfs.Create|vfs.Direct)
	if err != nil {
		t.Fatal(err)
	}
	if !f.DirectIO(file) {
		t.Fatal("DirectIO must report the Direct flag")
	}
	block, err := vfs.AlignedBuffer(2 * vfs.Alignment)
	if err != nil {
		t.Fatal(err)
	}
	defer vfs.FreeAligned(block)
	heap := make([]byte, vfs.Alignment+1)
	unaligned := heap[1:]
	if uintptrOf(unaligned)%vfs.Alignment == 0 {
		unaligned = heap[:vfs.Alignment] // the other one is misaligned then
	}
	cases := []struct {
		name string
		err  error
	}{
		{"offset", file.Writev([][]byte{block[:vfs.Alignment]}, 512)},
		{"length", file.Writev([][]byte{block[:512]}, 0)},
		{"buffer", file.Writev([][]byte{unaligned}, 0)},
		{"second buffer", file.WritevSync([][]byte{block[:vfs.Alignment], block[:100]}, 0)},
		{"pwrite", func() error { _, err := file.WriteAt(block[:100], 0); return err }()},
		{"pread", func() error { _, err := file.ReadAt(block[:100], 0); return err }()},
	}
	for _, c := range cases {
		if !errors.Is(c.err, syscall.EINVAL) {
			t.Errorf("unaligned %s: %v, want EINVAL", c.name, c.err)
		}
	}
	if n, _ := file.Size(); n != 0 {
		t.Fatalf("a refused write changed the file: size %d", n)
	}
	copy(block, "aligned")
	if err := file.WritevSync([][]byte{block[:vfs.Alignment], block[vfs.Alignment:]}, vfs.Alignment); err != nil {
		t.Fatal(err)
	}
	if _, err := file.ReadAt(block[vfs.Alignment:], vfs.Alignment); err != nil || string(block[vfs.Alignment:][:7]) != "aligned" {
		t.Fatalf("aligned read: %v", err)
	}
	buffered := open(t, f, "/d/buffered")
	if f.DirectIO(buffered) {
		t.Fatal("a buffered file is not direct")
	}
	if _, err := buffered.WriteAt([]byte("x"), 3); err != nil {
		t.Fatalf("buffered files take any alignment: %v", err)
	}
}

// TestCrashAtOperation: CrashAt crashes the FS as the chosen operation
// starts: the write before it is unsynced (kept or not by the options),
// the operation and later ones fail with ErrCrashed.
func TestCrashAtOperation(t *testing.T) {
	f := newFS(t)
	file := open(t, f, "/d/a")
	if err := f.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	f.CrashAt(Fault{Op: OpSync, PathContains: "/d/a", After: 1}, CrashOptions{})
	write(t, file, "one", 0)
	if err := file.Sync(); err != nil { // the first sync passes
		t.Fatal(err)
	}
	if f.Crashed() != nil {
		t.Fatal("crashed too early")
	}
	write(t, file, "two", 3)
	if err := file.Sync(); !errors.Is(err, ErrCrashed) {
		t.Fatalf("the second sync: %v, want ErrCrashed", err)
	}
	if _, err := file.WriteAt([]byte("x"), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("after the crash: %v", err)
	}
	after := f.Crashed()
	if after == nil {
		t.Fatal("Crashed is nil after the crash")
	}
	if got := readAll(t, after, "/d/a"); string(got) != "one" {
		t.Fatalf("after the crash: %q, want the synced part only", got)
	}
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
