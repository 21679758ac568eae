package crashfs

import (
	"math/rand/v2"
	"slices"
)

// SectorSize is the unit of CrashOptions.Sectors.
const SectorSize = 512

// CrashOptions choose how much unsynced data survives a crash. The zero
// value keeps none of it.
type CrashOptions struct {
	// Rand drives every random choice; nil keeps no unsynced data.
	Rand *rand.Rand
	// KeepUnsyncedProb is the probability that an unsynced change
	// survives: without Sectors, each unsynced write independently keeps a
	// random prefix (0 to all of its bytes) and each unsynced resize is
	// kept whole; with Sectors, each 512-byte sector touched by unsynced
	// writes independently takes its current content.
	KeepUnsyncedProb float64
	// Sectors tears at sector granularity instead of by write prefixes.
	// Unsynced resizes are then dropped, except that a kept sector beyond
	// the durable end extends the file (zero-filled before it).
	Sectors bool
}

func (o CrashOptions) keep() bool {
	return o.Rand != nil && o.KeepUnsyncedProb > 0 && o.Rand.Float64() < o.KeepUnsyncedProb
}

// Crash simulates a power failure: it returns a new FS holding only
// durable state (synced file content under directory entries made durable
// by SyncDir), and makes f and its files fail with ErrCrashed. The
// capacity carries over; injected faults do not.
func (f *FS) Crash() *FS { return f.CrashWith(CrashOptions{}) }

// CrashWith is Crash keeping part of the unsynced data as opt says, to
// simulate torn writes.
func (f *FS) CrashWith(opt CrashOptions) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashLocked(opt)
}

// trigger is an armed CrashAt.
type trigger struct {
	Fault
	opt   CrashOptions
	seen  int
	after *FS // the FS the crash left
}

// CrashAt arms a crash at a chosen operation: the operation that is the
// (at.After+1)-th to match at.Op and at.PathContains crashes f with opt as
// it starts (before it takes effect), and it and every later operation fail
// with ErrCrashed. at.Err and at.Once are ignored. Crashed returns the FS
// the crash left. A later CrashAt replaces an armed one.
func (f *FS) CrashAt(at Fault, opt CrashOptions) {
	f.mu.Lock()
	f.trigger = &trigger{Fault: at, opt: opt}
	f.mu.Unlock()
}

// Crashed returns the FS a CrashAt crash left, or nil if it has not fired.
func (f *FS) Crashed() *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.trigger == nil {
		return nil
	}
	return f.trigger.after
}

// triggerLocked fires an armed CrashAt due for op on paths and reports
// whether it did.
func (f *FS) triggerLocked(op Op, paths []string) bool {
	t := f.trigger
	if t == nil || t.after != nil || t.Op&op == 0 || !matchPath(t.PathContains, paths) {
		return false
	}
	if t.seen < t.After {
		t.seen++
		return false
	}
	t.after = f.crashLocked(t.opt)
	return true
}

// successorLocked marks f crashed and returns the FS that follows it,
// with f's capacity and directories and no files yet.
func (f *FS) successorLocked() *FS {
	f.crashed = true
	nf := New()
	nf.capacity = f.capacity
	for d := range f.dirs {
		nf.dirs[d] = true
	}
	return nf
}

func (f *FS) crashLocked(opt CrashOptions) *FS {
	nf := f.successorLocked()
	reborn := map[*inode]*inode{}
	for _, p := range sortedKeys(f.durable) { // sorted: a seeded Rand replays
		ino := f.durable[p]
		ni := reborn[ino]
		if ni == nil {
			data := ino.afterCrash(opt)
			ni = &inode{data: data, durable: slices.Clone(data), mtime: ino.mtime}
			reborn[ino] = ni
			nf.used += int64(len(data))
		}
		ni.nlink++
		nf.files[p] = ni
		nf.durable[p] = ni
		for d := parent(p); !nf.isDir(d); d = parent(d) {
			nf.dirs[d] = true // removed since, but the entry is durable
		}
	}
	return nf
}

func sortedKeys(m map[string]*inode) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// afterCrash returns the content the file has after a crash: its durable
// content with whatever unsynced data opt keeps.
func (ino *inode) afterCrash(opt CrashOptions) []byte {
	out := slices.Clone(ino.durable)
	if opt.Sectors {
		return ino.tearSectors(out, opt)
	}
	for _, c := range ino.pending {
		if !opt.keep() {
			continue
		}
		if !c.resize {
			c.data = c.data[:opt.Rand.IntN(len(c.data)+1)]
		}
		out = apply(out, c)
	}
	return out
}

// tearSectors copies into out each sector touched by an unsynced write
// that opt keeps, taken from the current content.
func (ino *inode) tearSectors(out []byte, opt CrashOptions) []byte {
	touched := map[int64]bool{}
	for _, c := range ino.pending {
		if c.resize || len(c.data) == 0 {
			continue
		}
		for s := c.off / SectorSize; s*SectorSize < c.off+int64(len(c.data)); s++ {
			touched[s] = true
		}
	}
	sectors := make([]int64, 0, len(touched))
	for s := range touched {
		sectors = append(sectors, s)
	}
	slices.Sort(sectors)
	for _, s := range sectors {
		if !opt.keep() {
			continue
		}
		lo := s * SectorSize
		hi := min(lo+SectorSize, int64(len(ino.data)))
		if lo < hi {
			out = apply(out, change{off: lo, data: ino.data[lo:hi]})
		}
	}
	return out
}

// KillProcess simulates the death of the process using f (kill -9, a
// panic, the OOM killer), not of the machine: it returns a new FS with
// everything f holds, unsynced writes included, still unsynced (the
// kernel's page cache outlives the process, so a later Crash of the new
// FS drops them), and makes f and its files fail with ErrCrashed, so that
// the dead process's goroutines touch nothing more. The capacity carries
// over; injected faults and sync gates do not.
func (f *FS) KillProcess() *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	nf := f.successorLocked()
	copies := map[*inode]*inode{}
	survive := func(ino *inode) *inode {
		if c := copies[ino]; c != nil {
			return c
		}
		c := &inode{data: slices.Clone(ino.data), durable: slices.Clone(ino.durable),
			pending: slices.Clone(ino.pending), wdirty: ino.wdirty, mtime: ino.mtime}
		copies[ino] = c
		nf.used += int64(len(c.data))
		return c
	}
	for _, p := range sortedKeys(f.files) {
		c := survive(f.files[p])
		c.nlink++
		nf.files[p] = c
	}
	for _, p := range sortedKeys(f.durable) {
		nf.durable[p] = survive(f.durable[p])
	}
	return nf
}
