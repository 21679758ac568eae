package consumequeue

import (
	"fmt"

	"github.com/mqd/mqd/internal/vfs"
)

// maxSpare caps the pending buffer kept for reuse; a bigger one (after a
// long prefill or a burst) is left to the garbage collector.
const maxSpare = 256 << 10

// Flush writes pending entries to their files (pwrite; see deferWrite for
// when a Flush that does not sync leaves them in memory) and, when at
// least minPages 4 KiB pages of the logical queue are not yet durable or
// minPages ≤ 0, fdatasyncs them. It is called by the engine's flush
// goroutine (and by Close); it runs concurrently with Put and readers and
// never blocks them on I/O.
func (q *Queue) Flush(minPages int) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if minPages > 0 && q.deferWrite(minPages) {
		return nil
	}
	if err := q.writeOut(); err != nil {
		return err
	}
	return q.syncLocked(minPages)
}

// writeOut pwrites the entries in pending to their files. Called with wmu.
//
// Ordering: the bytes are copied out of pending by the pwrite while mu is
// not held; Put may append to pending meanwhile, but only past the
// snapshot's length, and only writeOut (serialized by wmu) shortens pending.
// Readers keep reading [written, max) from pending until written advances
// under mu after the pwrite returned, so an entry is always readable from
// one place or the other.
func (q *Queue) writeOut() error {
	q.mu.RLock()
	if err := q.usable(); err != nil {
		q.mu.RUnlock()
		return err
	}
	pos, data := q.written, q.pending
	q.mu.RUnlock()
	for rest := data; len(rest) > 0; {
		seg, err := q.segmentForWrite(pos)
		if err != nil {
			return q.fail(err)
		}
		n := min(int64(len(rest)), seg.base+q.fileSize-pos*EntrySize)
		f, err := seg.use(true)
		if err != nil {
			return q.fail(err)
		}
		_, err = f.WriteAt(rest[:n], pos*EntrySize-seg.base)
		seg.done()
		if err != nil {
			return q.fail(err)
		}
		rest = rest[n:]
		pos += n / EntrySize
	}
	if len(data) > 0 {
		q.mu.Lock()
		q.written = pos
		q.dropPending(len(data))
		q.mu.Unlock()
	}
	return nil
}

// deferWrite reports whether a Flush(minPages) should leave pending in
// memory: it would not sync (too few pages), the file it would write to
// is closed, and opening it would close another (the descriptor budget
// is used up, files.go). Writing there would cost an open and, at the
// eviction, an early fdatasync; the entries stay readable from pending and
// the next Flush that syncs writes them. Called with wmu held.
func (q *Queue) deferWrite(minPages int) bool {
	q.mu.RLock()
	skip := q.err != nil || q.closed || len(q.pending) == 0 || q.dirtyDir ||
		(q.max*EntrySize)/pageSize-(q.synced*EntrySize)/pageSize >= int64(minPages)
	var tail *segment
	if n := len(q.segs); n > 0 && q.written*EntrySize < q.segs[n-1].base+q.fileSize {
		tail = q.segs[n-1] // not released while we hold wmu
	}
	q.mu.RUnlock()
	if skip || (tail != nil && q.files.isOpen(tail)) {
		return false
	}
	return q.files.full()
}

func (q *Queue) usable() error {
	if q.closed {
		return ErrClosed
	}
	return q.err
}

// dropPending removes the first n bytes of pending. Called with mu held.
func (q *Queue) dropPending(n int) {
	rest := q.pending[n:]
	if len(rest) == 0 && cap(q.pending) <= maxSpare {
		q.pending = q.pending[:0]
		return
	}
	old := q.pending
	q.pending = append(q.spare[:0], rest...)
	q.spare = nil
	if cap(old) <= maxSpare {
		q.spare = old[:0]
	}
}

// segmentForWrite returns the file that holds entry pos, creating it (and
// the queue directory) when pos is the first entry past the last file.
// Called with wmu held.
func (q *Queue) segmentForWrite(pos int64) (*segment, error) {
	b := pos * EntrySize
	q.mu.RLock()
	var last *segment
	if len(q.segs) > 0 {
		last = q.segs[len(q.segs)-1]
	}
	q.mu.RUnlock()
	if last != nil && b < last.base+q.fileSize {
		return last, nil
	}
	base := b - b%q.fileSize
	if last != nil && base != last.base+q.fileSize {
		return nil, fmt.Errorf("%w: %s/%d: write at byte %d does not follow file %s",
			ErrCorrupt, q.topic, q.id, b, last.name)
	}
	seg, err := q.createSegment(base)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.segs = append(q.segs, seg)
	q.mu.Unlock()
	return seg, nil
}

func (q *Queue) createSegment(base int64) (*segment, error) {
	if !q.dirMade {
		if err := q.fs.MkdirAll(q.dir); err != nil {
			return nil, err
		}
		q.dirMade, q.parentSync = true, true
	}
	seg := q.newSegment(base)
	f, err := q.files.pin(seg, vfs.Create, true)
	if err != nil {
		seg.release()
		return nil, err
	}
	// A leftover file of that name must not contribute stale entries.
	err = f.Truncate(0)
	seg.done()
	if err != nil {
		seg.release()
		return nil, err
	}
	q.dirtyDir = true
	return seg, nil
}

// syncLocked fdatasyncs the files holding [synced, written) when enough
// pages are dirty, then the directory if files were created. Called with wmu.
func (q *Queue) syncLocked(minPages int) error {
	q.mu.RLock()
	synced, written := q.synced, q.written
	var todo []*segment
	for _, s := range q.segs {
		if s.base < written*EntrySize && s.base+q.fileSize > synced*EntrySize {
			todo = append(todo, s)
		}
	}
	q.mu.RUnlock()
	if synced == written && !q.dirtyDir {
		return nil
	}
	if minPages > 0 && (written*EntrySize)/pageSize-(synced*EntrySize)/pageSize < int64(minPages) {
		return nil
	}
	for _, s := range todo {
		if err := q.files.sync(s); err != nil {
			return q.fail(err)
		}
	}
	if err := q.syncDirs(); err != nil {
		return q.fail(err)
	}
	q.mu.Lock()
	if q.err != nil {
		// a sync before an eviction failed meanwhile (files.go): what
		// was written is not durable
		err := q.err
		q.mu.Unlock()
		return err
	}
	q.synced = max(q.synced, written)
	q.unsynced = firstReal(q.pending[min((q.synced-q.written)*EntrySize, int64(len(q.pending))):])
	q.mu.Unlock()
	return nil
}

// firstReal returns the commit-log offset of the first entry of b that is
// not prefill, -1 when there is none.
func firstReal(b []byte) int64 {
	for p := 0; p+EntrySize <= len(b); p += EntrySize {
		if e := getEntry(b[p : p+EntrySize]); !e.isPrefill() {
			return e.CommitLogOffset
		}
	}
	return -1
}

// syncDirs makes file creations and removals durable. Called with wmu.
func (q *Queue) syncDirs() error {
	if !q.dirtyDir {
		return nil
	}
	if err := q.files.retry(func() error { return q.fs.SyncDir(q.dir) }); err != nil {
		return err
	}
	if q.parentSync {
		for _, d := range q.parents {
			if err := q.files.retry(func() error { return q.fs.SyncDir(d) }); err != nil {
				return err
			}
		}
	}
	q.dirtyDir, q.parentSync = false, false
	return nil
}

// fail records the first write-side error: the queue goes out of service
// (Put refuses, reads fail, both with ErrUnavailable) until Reopen
// rebuilds it. The entries from the first one not durable on are counted
// as lost.
func (q *Queue) fail(err error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		if !q.repairing {
			q.countTrouble(1)
		}
		q.err = fmt.Errorf("%w: %s/%d: %w", ErrUnavailable, q.topic, q.id, err)
		if q.lost < 0 {
			q.lost = q.unsynced
		}
	}
	return q.err
}

// close flushes nothing; it releases the files. Called by Store.
func (q *Queue) close() {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.mu.Lock()
	segs := q.segs
	q.segs, q.pending, q.closed = nil, nil, true
	q.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
}

// destroy closes the queue and removes its files and directory.
func (q *Queue) destroy() error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.mu.Lock()
	segs := q.segs
	q.segs, q.pending, q.closed = nil, nil, true
	if q.err != nil || q.repairing {
		q.countTrouble(-1) // the store no longer has it (DeleteTopic)
	}
	q.troubled = nil // later fails or repairs of this value count nothing
	q.mu.Unlock()
	var first error
	for _, s := range segs {
		q.files.detach(s)
		if err := q.fs.Remove(s.name); err != nil && !vfs.IsNotExist(err) && first == nil {
			first = err
		}
		s.release()
	}
	// Best effort: an empty directory left behind is ignored by Open.
	_ = q.fs.Remove(q.dir)
	return first
}
