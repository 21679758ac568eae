package crashfs

import (
	"strings"
	"syscall"
)

// Op is a set of operation kinds a Fault applies to.
type Op uint32

// Operation kinds.
const (
	OpOpen        Op = 1 << iota // FS.Open
	OpRead                       // File.ReadAt
	OpWrite                      // File.WriteAt, Writev, the write of WritevSync
	OpSync                       // File.Sync, the sync of WritevSync, Mapping.Sync
	OpTruncate                   // File.Truncate
	OpPreallocate                // FS.Preallocate
	OpRemove                     // FS.Remove
	OpRename                     // FS.Rename (matches either path)
	OpMkdir                      // FS.MkdirAll
	OpSyncDir                    // FS.SyncDir
	OpMap                        // FS.Map
	OpList                       // FS.List
	OpStat                       // FS.Stat, File.Size

	OpAll Op = 1<<iota - 1 // every kind
)

// Fault makes matching operations fail.
type Fault struct {
	// Op selects the operation kinds (OR them together).
	Op Op
	// PathContains restricts the fault to paths containing it; "" matches
	// every path.
	PathContains string
	// Err is the error returned, wrapped in *fs.PathError; nil means
	// syscall.EIO.
	Err error
	// After lets this many matching operations succeed first.
	After int
	// Once removes the fault after it fired once; otherwise every later
	// matching operation fails too.
	Once bool
}

type fault struct {
	Fault
	seen int
}

// Inject adds a fault. Faults are checked in the order injected; every
// matching fault counts the operation, and the first one due fires.
func (f *FS) Inject(ft Fault) {
	if ft.Err == nil {
		ft.Err = syscall.EIO
	}
	f.mu.Lock()
	f.faults = append(f.faults, &fault{Fault: ft})
	f.mu.Unlock()
}

// ClearFaults removes every injected fault.
func (f *FS) ClearFaults() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// faultLocked returns the error of the first fault due for op on paths.
func (f *FS) faultLocked(op Op, opName string, paths ...string) error {
	var err error
	for i := 0; i < len(f.faults); i++ {
		ft := f.faults[i]
		if ft.Op&op == 0 || !matchPath(ft.PathContains, paths) {
			continue
		}
		if ft.seen < ft.After {
			ft.seen++
			continue
		}
		if err != nil {
			continue
		}
		err = pathErr(opName, paths[0], ft.Err)
		if ft.Once {
			f.faults = append(f.faults[:i], f.faults[i+1:]...)
			i--
		}
	}
	return err
}

func matchPath(sub string, paths []string) bool {
	for _, p := range paths {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

// SetCapacity sets the disk size: file content may total at most bytes
// (file growth by writes, truncates and Preallocate counts; overwrites do
// not; removing a file that is not open frees its bytes). Writes beyond it
// write what fits and fail with ENOSPC. Negative means unlimited, the
// default.
func (f *FS) SetCapacity(bytes int64) {
	f.mu.Lock()
	f.capacity = bytes
	f.mu.Unlock()
}

// SetBudget leaves bytes of free space: SetCapacity(Used()+bytes).
func (f *FS) SetBudget(bytes int64) {
	f.mu.Lock()
	f.capacity = f.used + bytes
	f.mu.Unlock()
}

// Used returns the bytes of file content on the disk.
func (f *FS) Used() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used
}

// FreeSpace reports the bytes left under the capacity (vfs.FreeSpace).
func (f *FS) FreeSpace(string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.avail(), nil
}
