package vfs

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestFileLimit: FileLimit follows the soft RLIMIT_NOFILE.
func TestFileLimit(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = min(old.Max, 1000)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	got := FileLimit()
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if got != int(lim.Cur) {
		t.Fatalf("FileLimit = %d with a soft limit of %d", got, lim.Cur)
	}
}
