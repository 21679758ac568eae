package vfs

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// AlignedBuffer returns n bytes of page-aligned anonymous memory outside the
// Go heap, suitable for O_DIRECT writes. Free it with FreeAligned. The
// memory is zero on return.
func AlignedBuffer(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("vfs: mmap of %d aligned bytes: %w", n, err)
	}
	return b, nil
}

// FreeAligned releases memory from AlignedBuffer.
func FreeAligned(b []byte) {
	if b != nil {
		_ = unix.Munmap(b)
	}
}
