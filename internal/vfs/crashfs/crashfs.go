// Package crashfs is an in-memory vfs.FS for crash and fault tests. Import
// it only from _test.go files.
//
// Durability model. Every file keeps its current content and its durable
// content (as of its last File.Sync, WritevSync or Mapping.Sync), plus
// the list of changes since then. Directory entries (creations, renames,
// removals) become durable only when their directory is SyncDir'd;
// directories themselves are durable as soon as MkdirAll returns (a
// simplification: storage code creates its directories once at start).
// Crash returns a new FS holding only durable state, and the old FS
// and its files fail from then on with ErrCrashed. CrashWith can keep part
// of the unsynced data to simulate torn writes: random prefixes of unsynced
// writes, or random 512-byte sectors.
//
// Faults. Inject makes matching operations fail with an error (syscall.EIO
// by default) wrapped in *fs.PathError; SetCapacity and SetBudget make writes
// that grow files fail with ENOSPC once the disk is full. CrashAt crashes
// the FS at the n-th matching operation, as it starts.
//
// Pessimism where Linux is: a failed File.Sync drops the file's unsynced
// writes (they stay readable but never become durable, as after a
// writeback error), and a file opened with vfs.Direct refuses reads and
// writes whose offset, length or buffer address is not a multiple of
// vfs.Alignment with EINVAL, as O_DIRECT does.
//
// Goroutines: an FS is safe for concurrent use; one mutex guards all its
// state and every file and mapping of it. The exception is the slice
// returned by Mapping.Bytes, which aliases the file's current content (as a
// shared mmap does) and is not guarded: callers order their accesses to it
// themselves, exactly as with a real mapping.
package crashfs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/mqd/mqd/internal/vfs"
)

// ErrCrashed is returned (wrapped in *fs.PathError) by every operation on
// an FS, or its files and mappings, after Crash.
var ErrCrashed = errors.New("crashfs: file system crashed")

// FS is the in-memory file system. The zero value is not usable: use New.
type FS struct {
	mu       sync.Mutex
	crashed  bool
	dirs     map[string]bool   // existing directories, always durable
	files    map[string]*inode // current namespace
	durable  map[string]*inode // namespace as of each directory's last SyncDir
	faults   []*fault
	trigger  *trigger // an armed CrashAt
	capacity int64    // bytes of file content allowed; < 0: unlimited
	used     int64    // bytes of content of live inodes
	gate     syncGate // gate.go
}

// inode is a file's content, reachable from names and open handles.
type inode struct {
	data    []byte   // current content
	durable []byte   // content as of the last sync
	pending []change // changes since the last sync, oldest first
	nlink   int      // names in the current namespace
	opens   int      // open File handles
	maps    int      // live mappings
	wmaps   int      // live writable mappings
	wdirty  bool     // written through a mapping since the last sync
	// mtime is the wall time of the last change, as Linux keeps it (tests
	// of time-based retention, which treats the zero time as expired).
	// A crash keeps it.
	mtime time.Time
}

// change is one unsynced modification: a write, or a resize.
type change struct {
	off    int64
	data   []byte // the bytes written; nil for a resize
	resize bool
	size   int64
}

var _ vfs.FS = (*FS)(nil)

// New returns an empty file system with unlimited capacity.
func New() *FS {
	return &FS{
		dirs:     map[string]bool{},
		files:    map[string]*inode{},
		durable:  map[string]*inode{},
		capacity: -1,
	}
}

func clean(name string) string { return filepath.Clean(name) }

func parent(name string) string { return filepath.Dir(name) }

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// isDir reports whether p (cleaned) is a directory; "/" and "." always are.
func (f *FS) isDir(p string) bool { return p == "/" || p == "." || f.dirs[p] }

// begin locks f and returns an error if f crashed or the operation hits an
// injected fault. On error f is unlocked again.
func (f *FS) begin(op Op, opName string, paths ...string) error {
	f.mu.Lock()
	if f.crashed || f.triggerLocked(op, paths) {
		f.mu.Unlock()
		return pathErr(opName, paths[0], ErrCrashed)
	}
	if err := f.faultLocked(op, opName, paths...); err != nil {
		f.mu.Unlock()
		return err
	}
	return nil
}

// unlink drops one name of ino and frees it when nothing refers to it.
func (f *FS) unlink(ino *inode) {
	ino.nlink--
	f.maybeFree(ino)
}

func (f *FS) maybeFree(ino *inode) {
	if ino.nlink == 0 && ino.opens == 0 {
		f.used -= int64(len(ino.data))
	}
}

// Open opens or creates name. With vfs.Direct the file's I/O must be
// aligned (DirectIO then reports true). Creating needs the parent
// directory.
func (f *FS) Open(name string, flags vfs.OpenFlags) (vfs.File, error) {
	name = clean(name)
	if err := f.begin(OpOpen, "open", name); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if f.isDir(name) {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	ino := f.files[name]
	if ino == nil {
		if flags&vfs.Create == 0 || flags&vfs.ReadOnly != 0 {
			return nil, pathErr("open", name, fs.ErrNotExist)
		}
		if !f.isDir(parent(name)) {
			return nil, pathErr("open", name, fs.ErrNotExist)
		}
		ino = &inode{nlink: 1, mtime: time.Now()}
		f.files[name] = ino
	}
	ino.opens++
	return &File{fs: f, ino: ino, name: name, ro: flags&vfs.ReadOnly != 0, direct: flags&vfs.Direct != 0}, nil
}

// Remove deletes a file, or an empty directory.
func (f *FS) Remove(name string) error {
	name = clean(name)
	if err := f.begin(OpRemove, "remove", name); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if ino := f.files[name]; ino != nil {
		delete(f.files, name)
		f.unlink(ino)
		return nil
	}
	if !f.dirs[name] {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if len(f.childrenLocked(name)) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(f.dirs, name)
	return nil
}

// Rename renames a file atomically, replacing newname. Renaming
// directories is not supported.
func (f *FS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	if err := f.begin(OpRename, "rename", oldname, newname); err != nil {
		return err
	}
	defer f.mu.Unlock()
	ino := f.files[oldname]
	switch {
	case ino == nil && f.dirs[oldname]:
		return &fs.PathError{Op: "rename", Path: oldname, Err: errors.New("crashfs: cannot rename directories")}
	case ino == nil:
		return pathErr("rename", oldname, fs.ErrNotExist)
	case f.isDir(newname):
		return pathErr("rename", newname, syscall.EISDIR)
	case !f.isDir(parent(newname)):
		return pathErr("rename", newname, fs.ErrNotExist)
	case oldname == newname:
		return nil
	}
	if old := f.files[newname]; old != nil {
		f.unlink(old)
	}
	f.files[newname] = ino
	delete(f.files, oldname)
	return nil
}

// MkdirAll creates dir and its parents. Directories are durable at once.
func (f *FS) MkdirAll(dir string) error {
	dir = clean(dir)
	if err := f.begin(OpMkdir, "mkdir", dir); err != nil {
		return err
	}
	defer f.mu.Unlock()
	var todo []string
	for p := dir; !f.isDir(p); p = parent(p) {
		if f.files[p] != nil {
			return pathErr("mkdir", p, syscall.ENOTDIR)
		}
		todo = append(todo, p)
	}
	for _, p := range todo {
		f.dirs[p] = true
	}
	return nil
}

// childrenLocked returns the names of dir's entries, sorted.
func (f *FS) childrenLocked(dir string) []string {
	var names []string
	for p := range f.files {
		if parent(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	for p := range f.dirs {
		if parent(p) == dir && p != dir {
			names = append(names, filepath.Base(p))
		}
	}
	sort.Strings(names)
	return names
}

// List returns the sorted names of dir's entries.
func (f *FS) List(dir string) ([]string, error) {
	dir = clean(dir)
	if err := f.begin(OpList, "readdir", dir); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if !f.isDir(dir) {
		return nil, pathErr("readdir", dir, fs.ErrNotExist)
	}
	return f.childrenLocked(dir), nil
}

// Stat describes a file or directory.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	name = clean(name)
	if err := f.begin(OpStat, "stat", name); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if ino := f.files[name]; ino != nil {
		return fileInfo{name: filepath.Base(name), size: int64(len(ino.data)), mtime: ino.mtime}, nil
	}
	if f.isDir(name) {
		return fileInfo{name: filepath.Base(name), dir: true}, nil
	}
	return nil, pathErr("stat", name, fs.ErrNotExist)
}

// SyncDir makes the entries of dir durable: created and renamed-in names
// survive a crash, removed and renamed-away names stay gone.
func (f *FS) SyncDir(dir string) error {
	dir = clean(dir)
	if err := f.begin(OpSyncDir, "fsync", dir); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if !f.isDir(dir) {
		return pathErr("fsync", dir, fs.ErrNotExist)
	}
	for p := range f.durable {
		if parent(p) == dir && f.files[p] == nil {
			delete(f.durable, p)
		}
	}
	for p, ino := range f.files {
		if parent(p) == dir {
			f.durable[p] = ino
		}
	}
	return nil
}

// DirectIO reports whether file was opened with vfs.Direct (its I/O must
// then be aligned).
func (f *FS) DirectIO(file vfs.File) bool {
	cf, ok := file.(*File)
	return ok && cf.direct
}

// Backend returns "crashfs".
func (f *FS) Backend() string { return "crashfs" }

// Close does nothing, so that a test can reopen its store on the same FS
// after a clean shutdown. Use Crash to lose unsynced state.
func (f *FS) Close() error { return nil }

type fileInfo struct {
	name  string
	size  int64
	dir   bool
	mtime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return i.dir }
func (i fileInfo) Sys() any           { return nil }
func (i fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
