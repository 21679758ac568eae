package commitlog

import (
	"sync"
	"testing"

	"github.com/mqd/mqd/internal/vfs"
)

// uringRingEntries sizes the rings of the tests' io_uring file systems:
// the log has one write in flight, so a small ring
// is plenty and keeps the locked memory of many subtests low.
const uringRingEntries = 64

// uringProbe tries the io_uring backend once per test binary: a ring is
// created (with the opcode probe NewUring runs) and closed again.
var uringProbe = sync.OnceValue(func() error {
	fsys, err := vfs.NewUring(uringRingEntries)
	if err != nil {
		return err
	}
	return fsys.Close()
})

// uringAvailable reports whether the io_uring backend works on this
// machine (kernel support, no seccomp or sysctl block).
func uringAvailable() bool { return uringProbe() == nil }

// newUringFS returns a fresh io_uring file system, closed (its ring
// released) when the test ends, after the test's own deferred Closes.
func newUringFS(t *testing.T) vfs.FS {
	t.Helper()
	fsys, err := vfs.NewUring(uringRingEntries)
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	t.Cleanup(func() {
		if err := fsys.Close(); err != nil {
			t.Errorf("closing the io_uring file system: %v", err)
		}
	})
	return fsys
}

// TestUringBackendWired makes sure the io_uring runs of forEachConfig
// really use io_uring where it exists, and says so where it does not.
func TestUringBackendWired(t *testing.T) {
	if err := uringProbe(); err != nil {
		t.Skipf("io_uring unavailable here, storage tests run on pwrite and crashfs only: %v", err)
	}
	var names []string
	for _, b := range backends() {
		names = append(names, b.name)
	}
	found := false
	for _, b := range backends() {
		if b.name != "io_uring" {
			continue
		}
		found = true
		if got := b.fs(t).Backend(); got != "io_uring" {
			t.Fatalf("io_uring backend reports %q", got)
		}
	}
	if !found {
		t.Fatalf("io_uring works but backends() = %v", names)
	}
}
