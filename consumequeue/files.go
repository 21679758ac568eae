package consumequeue

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/mqd/mqd/internal/vfs"
)

// A store with 10 000 topics × 8 queues has at least 80 000 segment files;
// keeping each open would need as many descriptors. fileCache bounds how
// many are open at once (Config.MaxOpenFiles):
//
//   - a segment's file is opened when first used and stays open while idle
//     until the budget is reached; then the least recently used idle file
//     is closed;
//   - every use of a file (pread, pwrite, truncate, fdatasync, size) pins
//     it: a pinned file is never closed, so a reader's pread never runs on
//     a closed descriptor;
//   - a file with written-but-unsynced bytes (dirty) is fdatasynced before
//     it is closed, because a writeback error is reported only to the
//     descriptors open when it happened (Linux errseq): closing first could
//     hide it. A failed sync takes the segment's queue out of service,
//     exactly as a failed Flush does (fault.go); idle clean files are
//     preferred as victims;
//   - an open that fails with EMFILE or ENFILE (other files of the process
//     hold the descriptors) closes one idle file and is retried once; an
//     open that still fails is returned to the caller: a writer takes its
//     queue out of service, a reader gets ErrUnavailable;
//   - a file about to be removed (retention, truncation) is detached: it
//     is never opened by name again, since a new file may take the name;
//   - when every open file is pinned, a new open waits for an unpin. No
//     goroutine holds two pins at once, so the wait always ends.
//
// mu is never held during I/O, and never taken while a queue's mu is held.
type fileCache struct {
	fs    vfs.FS
	limit int // ≤ 0: unlimited (EMFILE still evicts)

	mu   sync.Mutex
	cond sync.Cond
	open int // files open or being opened
	idle lru // open, unpinned segments, least recently used first
	peak int // most files ever open at once (tests, stats)
}

func newFileCache(fsys vfs.FS, limit int) *fileCache {
	c := &fileCache{fs: fsys, limit: limit}
	c.cond.L = &c.mu
	return c
}

// errRemoved: a file that was removed is not opened again by name.
var errRemoved = fmt.Errorf("%w: file removed", ErrClosed)

// victimScan is how many idle files, oldest first, eviction looks at for
// a clean one before it syncs the oldest dirty one.
const victimScan = 16

// pin returns s's file, opening it (with flags) when it is closed, and
// keeps it open until unpin. write marks the file dirty: the caller is
// about to change it.
func (c *fileCache) pin(s *segment, flags vfs.OpenFlags, write bool) (vfs.File, error) {
	c.mu.Lock()
	for {
		if s.f == nil && (s.dead || s.detached) {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %s", errRemoved, s.name)
		}
		if s.f != nil {
			c.pinLocked(s, write)
			c.mu.Unlock()
			return s.f, nil
		}
		if !s.opening && (c.limit <= 0 || c.open < c.limit) {
			break
		}
		if s.opening || !c.evictLocked() {
			c.cond.Wait()
		}
	}
	s.opening = true
	c.open++
	c.peak = max(c.peak, c.open)
	c.mu.Unlock()
	f, err := c.fs.Open(s.name, flags)
	if err != nil && tooManyFiles(err) {
		c.mu.Lock()
		c.evictLocked()
		c.mu.Unlock()
		f, err = c.fs.Open(s.name, flags)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.opening = false
	c.cond.Broadcast()
	if err == nil && s.detached {
		// removed while it was being opened: the name may already
		// belong to a new file
		c.mu.Unlock()
		_ = f.Close()
		c.mu.Lock()
		err = fmt.Errorf("%w: %s", errRemoved, s.name)
	}
	if err != nil {
		c.open--
		return nil, err
	}
	s.f = f
	c.pinLocked(s, write)
	return f, nil
}

func (c *fileCache) pinLocked(s *segment, write bool) {
	c.idle.remove(s)
	s.pins++
	if write {
		s.dirty = true
		s.gen++
	}
}

// unpin ends a use of s's file. The file becomes the most recently used
// idle one, or is closed when its segment was released meanwhile.
func (c *fileCache) unpin(s *segment) {
	c.mu.Lock()
	s.pins--
	if s.pins > 0 {
		c.mu.Unlock()
		return
	}
	if s.dead {
		f := s.f
		s.f = nil
		c.mu.Unlock()
		c.closeFile(f)
		return
	}
	c.idle.pushBack(s)
	c.cond.Broadcast()
	c.mu.Unlock()
}

// dirty reports whether s has bytes written since its last successful
// fdatasync.
func (c *fileCache) dirty(s *segment) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.dirty
}

// sync fdatasyncs s's file if it is dirty. A failure is returned as is;
// the caller takes the queue out of service.
func (c *fileCache) sync(s *segment) error {
	if !c.dirty(s) {
		return nil
	}
	f, err := c.pin(s, 0, false)
	if err != nil {
		return err
	}
	defer c.unpin(s)
	c.mu.Lock()
	gen := s.gen
	c.mu.Unlock()
	if err := f.Sync(); err != nil {
		return err
	}
	c.markSynced(s, gen)
	return nil
}

// markSynced clears dirty unless s was written after the sync began.
func (c *fileCache) markSynced(s *segment, gen uint64) {
	c.mu.Lock()
	if s.gen == gen {
		s.dirty = false
	}
	c.mu.Unlock()
}

// evictLocked closes one idle file: the oldest clean one among the
// victimScan oldest, else the oldest, synced first. It returns false when
// no file is idle. Called with mu held; mu is released during I/O.
func (c *fileCache) evictLocked() bool {
	for {
		victim := c.victimLocked()
		if victim == nil {
			return false
		}
		if victim.dirty {
			// it stays the oldest: the next round closes it unless it
			// was used (or written) meanwhile
			c.syncVictimLocked(victim)
			continue
		}
		c.idle.remove(victim)
		f := victim.f
		victim.f = nil
		c.mu.Unlock()
		c.closeFile(f)
		c.mu.Lock()
		return true
	}
}

func (c *fileCache) victimLocked() *segment {
	n := 0
	for s := c.idle.head; s != nil && n < victimScan; s, n = s.next, n+1 {
		if !s.dirty {
			return s
		}
	}
	return c.idle.head
}

// syncVictimLocked fdatasyncs an idle dirty file before it may be closed.
// A failure takes its queue out of service (the error stays sticky there,
// so closing the file afterwards hides nothing) and clears dirty: the
// queue's unsynced entries are dropped and rewritten by Reopen. The file
// goes back to the head of the idle list. Called and returns with mu held.
func (c *fileCache) syncVictimLocked(s *segment) {
	c.pinLocked(s, false)
	gen, f := s.gen, s.f
	c.mu.Unlock()
	err := f.Sync()
	if err != nil {
		_ = s.q.fail(fmt.Errorf("sync of %s before closing it: %w", s.name, err))
	}
	c.mu.Lock()
	if err != nil || s.gen == gen {
		s.dirty = false
	}
	s.pins--
	switch {
	case s.pins > 0:
	case s.dead:
		s.f = nil
		c.mu.Unlock()
		c.closeFile(f)
		c.mu.Lock()
	default:
		c.idle.pushFront(s)
		c.cond.Broadcast()
	}
}

// detach marks s's file as about to be removed: from now on it is never
// opened by name again (a new file may take the name), only used through a
// descriptor already open. Called before the removal.
func (c *fileCache) detach(s *segment) {
	c.mu.Lock()
	s.detached = true
	c.mu.Unlock()
}

// release closes s's file for good (its segment left its queue and no
// reader holds it): now when no use is in progress, else at the last unpin.
func (c *fileCache) release(s *segment) {
	c.mu.Lock()
	s.dead = true
	if s.f == nil || s.pins > 0 {
		c.mu.Unlock()
		return
	}
	c.idle.remove(s)
	f := s.f
	s.f = nil
	c.mu.Unlock()
	c.closeFile(f)
}

// closeFile closes f and frees its slot in the budget.
func (c *fileCache) closeFile(f vfs.File) {
	_ = f.Close()
	c.mu.Lock()
	c.open--
	c.cond.Broadcast()
	c.mu.Unlock()
}

// isOpen reports whether s's file is open.
func (c *fileCache) isOpen(s *segment) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.f != nil
}

// full reports whether opening one more file would close another.
func (c *fileCache) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit > 0 && c.open >= c.limit
}

// stats returns the number of files open now and the most ever open.
func (c *fileCache) stats() (open, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.peak
}

// retry runs op (a directory sync, which opens the directory) and, when
// it fails with EMFILE or ENFILE, closes an idle file and runs it once more.
func (c *fileCache) retry(op func() error) error {
	err := op()
	if err == nil || !tooManyFiles(err) {
		return err
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return op()
}

// tooManyFiles reports whether err is EMFILE or ENFILE.
func tooManyFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// Bounds of DefaultMaxOpenFiles.
const (
	minDefaultOpenFiles = 64
	maxDefaultOpenFiles = 65536
)

// DefaultMaxOpenFiles is the descriptor budget of a store whose
// Config.MaxOpenFiles is 0: half of RLIMIT_NOFILE (the other half is left
// to the commit log, the index, client and replication connections), at
// most 65 536 (enough for every queue's newest file with 8 000 topics × 8
// queues; past that a miss costs one open(2), and each open file pins
// kernel memory), at least 64.
func DefaultMaxOpenFiles() int { return budgetFor(vfs.FileLimit()) }

func budgetFor(nofile int) int {
	return min(max(nofile/2, minDefaultOpenFiles), maxDefaultOpenFiles)
}

// lru is a list of idle segments threaded through them (no allocation per
// use), least recently used at head.
type lru struct{ head, tail *segment }

func (l *lru) pushBack(s *segment) {
	s.prev, s.next, s.inLRU = l.tail, nil, true
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *lru) pushFront(s *segment) {
	s.prev, s.next, s.inLRU = nil, l.head, true
	if l.head != nil {
		l.head.prev = s
	} else {
		l.tail = s
	}
	l.head = s
}

func (l *lru) remove(s *segment) {
	if !s.inLRU {
		return
	}
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next, s.inLRU = nil, nil, false
}
