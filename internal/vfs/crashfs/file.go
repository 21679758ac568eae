package crashfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"syscall"
	"time"
	"unsafe"

	"github.com/mqd/mqd/internal/vfs"
)

// errMapped is returned when a file would change size while mapped: the
// mapping aliases the content buffer, which must not move.
var errMapped = errors.New("crashfs: file is mapped; it cannot change size")

// File is an open crashfs file.
type File struct {
	fs     *FS
	ino    *inode
	name   string
	ro     bool
	direct bool // opened with vfs.Direct: I/O must be aligned (see checkDirect)
	closed bool // guarded by fs.mu
}

var _ vfs.File = (*File)(nil)

// begin locks the FS for an operation on f (see FS.begin) and checks that
// f is open and, for writes, writable.
func (f *File) begin(op Op, opName string) error {
	if err := f.fs.begin(op, opName, f.name); err != nil {
		return err
	}
	var err error
	switch {
	case f.closed:
		err = fs.ErrClosed
	case f.ro && op&(OpWrite|OpTruncate|OpPreallocate) != 0:
		err = syscall.EBADF
	}
	if err != nil {
		f.fs.mu.Unlock()
		return pathErr(opName, f.name, err)
	}
	return nil
}

// Name returns the (cleaned) path the file was opened with.
func (f *File) Name() string { return f.name }

// ReadAt reads current content; reading past the end returns io.EOF.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := f.begin(OpRead, "pread"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	if off < 0 || !f.aligned(off, p) {
		return 0, pathErr("pread", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes p at off. On a full disk it writes what fits and returns
// ENOSPC.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if err := f.begin(OpWrite, "pwrite"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	return f.writeLocked(p, off, "pwrite")
}

// Writev writes bufs back to back at off.
func (f *File) Writev(bufs [][]byte, off int64) error {
	if err := f.begin(OpWrite, "pwritev"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	return f.writevLocked(bufs, off)
}

// WritevSync writes bufs at off, then syncs. The write and the sync are
// separate fault points (OpWrite, OpSync).
func (f *File) WritevSync(bufs [][]byte, off int64) error {
	f.fs.waitGate(f.name) // gate.go
	if err := f.begin(OpWrite, "pwritev"); err != nil {
		return err
	}
	err := f.writevLocked(bufs, off)
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Sync()
}

func (f *File) writevLocked(bufs [][]byte, off int64) error {
	for _, b := range bufs { // O_DIRECT refuses the whole call
		if !f.aligned(off, b) {
			return pathErr("pwritev", f.name, syscall.EINVAL)
		}
	}
	for _, b := range bufs {
		n, err := f.writeLocked(b, off, "pwritev")
		if err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// writeLocked writes p at off, clipped to the free space, and records the
// change for Crash.
func (f *File) writeLocked(p []byte, off int64, op string) (int, error) {
	if off < 0 || !f.aligned(off, p) {
		return 0, pathErr(op, f.name, syscall.EINVAL)
	}
	ino := f.ino
	end := off + int64(len(p))
	var err error
	if grow := end - int64(len(ino.data)); grow > 0 {
		if ino.maps > 0 {
			return 0, pathErr(op, f.name, errMapped)
		}
		if avail := f.fs.avail(); grow > avail {
			end -= grow - avail
			err = pathErr(op, f.name, syscall.ENOSPC)
		}
	}
	if end <= off {
		return 0, err
	}
	p = p[:end-off]
	f.fs.resize(ino, max(end, int64(len(ino.data))))
	copy(ino.data[off:], p)
	ino.pending = append(ino.pending, change{off: off, data: append([]byte(nil), p...)})
	ino.mtime = time.Now()
	return len(p), err
}

// Sync makes the file's current content durable. When it fails (an
// injected fault), the file's unsynced changes are dropped as Linux may
// drop dirty pages after a writeback error: they stay readable until the
// crash but never become durable, not even by a later successful Sync, and
// a crash keeps none of them.
func (f *File) Sync() error {
	f.fs.waitGate(f.name) // gate.go
	if err := f.begin(OpSync, "fdatasync"); err != nil {
		if !errors.Is(err, fs.ErrClosed) {
			f.fs.dropPending(f)
		}
		return err
	}
	defer f.fs.mu.Unlock()
	f.ino.sync()
	return nil
}

// Truncate sets the size; growth counts against the capacity.
func (f *File) Truncate(size int64) error {
	if err := f.begin(OpTruncate, "truncate"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	return f.truncateLocked(size, "truncate")
}

func (f *File) truncateLocked(size int64, op string) error {
	ino := f.ino
	cur := int64(len(ino.data))
	switch {
	case size < 0:
		return pathErr(op, f.name, syscall.EINVAL)
	case size == cur:
		return nil
	case ino.maps > 0:
		return pathErr(op, f.name, errMapped)
	case size-cur > f.fs.avail():
		return pathErr(op, f.name, syscall.ENOSPC)
	}
	f.fs.resize(ino, size)
	ino.pending = append(ino.pending, change{resize: true, size: size})
	ino.mtime = time.Now()
	return nil
}

// Size returns the current size.
func (f *File) Size() (int64, error) {
	if err := f.begin(OpStat, "stat"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	return int64(len(f.ino.data)), nil
}

// Close releases the handle; it does not sync. A second Close fails.
func (f *File) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	if !f.fs.crashed {
		f.ino.opens--
		f.fs.maybeFree(f.ino)
	}
	return nil
}

// aligned reports whether an I/O of p at off may be issued on f: always
// for a buffered file; for a vfs.Direct file, as O_DIRECT requires, only
// when the offset, the length and the buffer's address are multiples of
// vfs.Alignment.
func (f *File) aligned(off int64, p []byte) bool {
	if !f.direct {
		return true
	}
	if off%vfs.Alignment != 0 || len(p)%vfs.Alignment != 0 {
		return false
	}
	return len(p) == 0 || uintptr(unsafe.Pointer(&p[0]))%vfs.Alignment == 0
}

// dropPending forgets f's unsynced changes after a failed sync (see
// Sync). A crashed FS keeps its state.
func (fsys *FS) dropPending(f *File) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if fsys.crashed {
		return
	}
	ino := f.ino
	clear(ino.pending)
	ino.pending = ino.pending[:0]
	// Writes through a mapping are not tracked one by one, so they are not
	// dropped: a later successful sync still makes them durable.
}

// avail returns the bytes that files may still grow by.
func (f *FS) avail() int64 {
	if f.capacity < 0 {
		return 1 << 62
	}
	return max(f.capacity-f.used, 0)
}

// resize sets ino's current size, zero-filling growth, and accounts for it.
func (f *FS) resize(ino *inode, size int64) {
	f.used += size - int64(len(ino.data))
	ino.data = resized(ino.data, size)
}

// resized returns b with length size: truncated, or extended with zeros.
func resized(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size]
	}
	if size <= int64(cap(b)) {
		old := len(b)
		b = b[:size]
		clear(b[old:])
		return b
	}
	nb := make([]byte, size, max(size, 2*int64(cap(b))))
	copy(nb, b)
	return nb
}

// sync makes the current content durable. Changes made through a mapping
// are not in pending, so after one the whole content is copied.
func (ino *inode) sync() {
	if ino.wdirty {
		ino.durable = append(ino.durable[:0], ino.data...)
	} else {
		for _, c := range ino.pending {
			ino.durable = apply(ino.durable, c)
		}
	}
	clear(ino.pending)
	ino.pending = ino.pending[:0]
	ino.wdirty = ino.wmaps > 0
}

// apply returns b with change c applied.
func apply(b []byte, c change) []byte {
	if c.resize {
		return resized(b, c.size)
	}
	if end := c.off + int64(len(c.data)); end > int64(len(b)) {
		b = resized(b, end)
	}
	copy(b[c.off:], c.data)
	return b
}

// Preallocate zero-fills f up to size without syncing it, like the os
// backend: existing bytes are kept, growth counts against the capacity (on
// ENOSPC the file keeps what fitted), and all of it is durable only with
// the file's next Sync.
func (f *FS) Preallocate(file vfs.File, size int64) error {
	cf, err := f.own(file)
	if err != nil {
		return err
	}
	if err := cf.begin(OpPreallocate, "fallocate"); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if size > int64(len(cf.ino.data)) {
		if err := cf.truncateLocked(min(size, int64(len(cf.ino.data))+f.avail()), "fallocate"); err != nil {
			return err
		}
		if size > int64(len(cf.ino.data)) {
			return pathErr("fallocate", cf.name, syscall.ENOSPC)
		}
	}
	return nil // durable with the file's next Sync, as on Linux
}

// own checks that file belongs to f.
func (f *FS) own(file vfs.File) (*File, error) {
	cf, ok := file.(*File)
	if !ok || cf.fs != f {
		return nil, fmt.Errorf("crashfs: %T is not a file of this FS", file)
	}
	return cf, nil
}

// Mapping is a crashfs memory mapping: Bytes aliases the file's current
// content, so writes through it are the file's content at once, and the
// file cannot change size while mapped (writes and truncates that would
// resize it fail). Writes through a read-only mapping are a bug crashfs
// cannot catch. Sync makes the whole file durable (stronger than msync,
// which covers only the mapped range); unsynced mapped writes vanish on
// Crash, also with CrashWith's torn-write options.
type Mapping struct {
	fs       *FS
	file     *File
	b        []byte
	writable bool
	closed   bool // guarded by fs.mu
}

// Map maps [0,size) of file; size must be between 1 and the file size.
func (f *FS) Map(file vfs.File, size int64, writable bool) (vfs.Mapping, error) {
	cf, err := f.own(file)
	if err != nil {
		return nil, err
	}
	if err := cf.begin(OpMap, "mmap"); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	ino := cf.ino
	if size <= 0 || size > int64(len(ino.data)) {
		return nil, pathErr("mmap", cf.name, syscall.EINVAL)
	}
	ino.maps++
	if writable {
		ino.wmaps++
		ino.wdirty = true
		ino.mtime = time.Now()
	}
	return &Mapping{fs: f, file: cf, b: ino.data[:size:size], writable: writable}, nil
}

// Bytes returns the mapped memory, which aliases the file content.
func (m *Mapping) Bytes() []byte { return m.b }

// Sync makes the file durable (fault point OpSync).
func (m *Mapping) Sync() error {
	if err := m.fs.begin(OpSync, "msync", m.file.name); err != nil {
		return err
	}
	defer m.fs.mu.Unlock()
	if m.closed {
		return pathErr("msync", m.file.name, fs.ErrClosed)
	}
	m.file.ino.sync()
	return nil
}

// WriteBack makes nothing durable (sync_file_range does not either): it
// only checks that the mapping is open.
func (m *Mapping) WriteBack(off, n int64) error {
	m.fs.mu.Lock()
	defer m.fs.mu.Unlock()
	if m.closed {
		return pathErr("sync_file_range", m.file.name, fs.ErrClosed)
	}
	return nil
}

// Close unmaps without syncing. Later calls do nothing.
func (m *Mapping) Close() error {
	m.fs.mu.Lock()
	defer m.fs.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.file.ino.maps--
	if m.writable {
		m.file.ino.wmaps--
	}
	m.b = nil
	return nil
}
