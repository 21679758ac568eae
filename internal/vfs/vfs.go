// Package vfs is the file layer under the storage packages.
//
// Storage code (commitlog, consumequeue, index, engine) never calls the os
// package directly: it is handed an FS. Three implementations exist:
//
//   - Default(): plain pread/pwrite/fdatasync through golang.org/x/sys/unix
//     (the "pwrite" backend, used where io_uring is missing or blocked);
//   - the io_uring backend (NewUring), whose O_DIRECT writes go through a
//     ring (internal/uring) run by one caller at a time, the leader, on its
//     own goroutine; reads, every fdatasync and the writes of buffered
//     files use pread, fdatasync and pwrite from the calling goroutine;
//   - crashfs (tests only): memory that forgets unsynced bytes on Crash and
//     injects errors.
//
// Open picks the backend: io_uring when requested or "auto" and the probe
// succeeds, else pwrite, and logs one line saying which runs.
package vfs

import (
	"errors"
	"io/fs"
)

// File is an open file. WriteAt and ReadAt are positional and may be called
// from several goroutines; the storage packages never share the write side of
// a file between goroutines.
type File interface {
	// ReadAt reads len(p) bytes at off. Short reads at EOF return io.EOF.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes p at off (no durability implied).
	WriteAt(p []byte, off int64) (int, error)
	// WritevSync writes bufs back to back starting at off and then makes the
	// file's data durable (fdatasync from the caller's goroutine, on either
	// backend: see the io_uring backend's Sync). Either error is returned as is;
	// callers treat any error as sticky and never retry.
	WritevSync(bufs [][]byte, off int64) error
	// Writev writes bufs back to back starting at off without syncing.
	Writev(bufs [][]byte, off int64) error
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	// Truncate sets the file size.
	Truncate(size int64) error
	// Size returns the current file size.
	Size() (int64, error)
	// Close releases the file. It does not sync.
	Close() error
	// Name returns the path the file was opened with.
	Name() string
}

// Mapping is a memory mapping of a file. Bytes stays valid until Close.
type Mapping interface {
	Bytes() []byte
	// Sync makes writes through the mapping durable (msync MS_SYNC).
	Sync() error
	// WriteBack writes the mapping's changed pages in [off, off+n) to the
	// file and waits for those writes (sync_file_range), making nothing
	// durable: no journal commit, no device cache flush. A caller spreads
	// a large Sync's writes over time with it, so that they do not reach
	// the disk at once and queue ahead of other files' syncs.
	WriteBack(off, n int64) error
	// Close unmaps. It does not sync.
	Close() error
}

// OpenFlags select how a file is opened.
type OpenFlags int

const (
	// ReadOnly opens an existing file for reading.
	ReadOnly OpenFlags = 1 << iota
	// Create creates the file if missing (read-write).
	Create
	// Direct asks for O_DIRECT: writes then must be 4096-byte aligned in
	// offset, length and memory address. Implementations that cannot do
	// direct I/O (crashfs, file systems without O_DIRECT such as tmpfs)
	// ignore the flag; DirectIO reports what was granted.
	Direct
)

// Alignment is the offset/length/address alignment that direct I/O needs.
const Alignment = 4096

// FS is a file system.
type FS interface {
	// Open opens name with flags.
	Open(name string, flags OpenFlags) (File, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename renames a file atomically.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and parents.
	MkdirAll(dir string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat reports whether name exists and its size.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(dir string) error
	// Preallocate makes [0,size) of f allocated and written (zero-filled),
	// so later writes into it need no metadata update at fdatasync time
	// once a File.Sync made the allocation durable: it does not sync, so
	// that a file prepared in paced steps is synced once, not per step
	// (commitlog, pace.go). It is called off the hot path by a background
	// goroutine.
	Preallocate(f File, size int64) error
	// DirectIO reports whether f was opened with working O_DIRECT.
	DirectIO(f File) bool
	// Map maps [0,size) of f into memory, shared with the file: bytes
	// written through the mapping become the file's content, and
	// Mapping.Sync makes them durable (msync). Used by the index (random
	// slot updates) and for zero-copy reads of sealed commit-log segments.
	// The file must already be at least size bytes long.
	Map(f File, size int64, writable bool) (Mapping, error)
	// Backend names the implementation for the one log line at open:
	// "io_uring", "pwrite", "crashfs".
	Backend() string
	// Close releases backend resources (the io_uring ring and its goroutine).
	Close() error
}

// ErrNotExist is returned (wrapped) when a file does not exist.
var ErrNotExist = fs.ErrNotExist

// IsNotExist reports whether err says a file is missing.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
