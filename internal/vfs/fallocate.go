package vfs

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Fallocate reserves [0,size) of f without writing it (fallocate(2)): the
// blocks are allocated, so later writes cannot fail for space, but they
// are unwritten extents, so the first fdatasync after writing into them
// also commits the extent conversion. Used where write amplification costs
// more than that (ASYNC_FLUSH). File layers without fallocate (crashfs)
// fall back to fsys.Preallocate (zero fill); so does a file system that
// does not support it.
func Fallocate(fsys FS, f File, size int64) error {
	var o *osFile
	switch x := f.(type) {
	case *osFile:
		o = x
	case *uringFile:
		o = x.o
	default:
		return fsys.Preallocate(f, size)
	}
	for {
		err := unix.Fallocate(o.fd, 0, 0, size)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return fsys.Preallocate(f, size)
		default:
			return &fs.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
		}
	}
}
