package consumequeue

// TruncateDirty removes every entry whose commit-log offset is ≥ physEnd:
// recovery calls it after the commit log was truncated to physEnd, before
// dispatch starts (never concurrently with Put). Readers may run. When no
// entry is left in any file the queue returns to the never-written state
// (MinOffset = MaxOffset = 0, MaxPhysicalOffset = -1), as RocketMQ does when
// it deletes all of a queue's files.
func (q *Queue) TruncateDirty(physEnd int64) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if err := q.writeOut(); err != nil {
		return err
	}
	q.mu.RLock()
	lo, hi, maxPhys := q.min, q.written, q.maxPhys
	q.mu.RUnlock()
	if maxPhys < 0 {
		return nil
	}
	c, err := q.searchPhys(lo, hi, physEnd)
	if err != nil || c == hi {
		return err
	}
	return q.truncateAt(c)
}

// TruncateTo removes every entry at or above queue offset c (recovery,
// before dispatch starts; never concurrently with Put).
func (q *Queue) TruncateTo(c int64) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if err := q.writeOut(); err != nil {
		return err
	}
	q.mu.RLock()
	hi := q.written
	q.mu.RUnlock()
	if c >= hi {
		return nil
	}
	return q.truncateAt(c)
}

// truncateAt drops entries [c, …). Called with wmu held after writeOut, so
// every entry below written is in a file.
func (q *Queue) truncateAt(c int64) error {
	if c <= q.segs[0].base/EntrySize {
		return q.reset()
	}
	prev, err := q.loadEntry(c - 1)
	if err != nil {
		return err
	}
	if prev.isPrefill() {
		return q.reset()
	}
	i := int((c*EntrySize - q.segs[0].base) / q.fileSize)
	q.mu.Lock()
	q.max, q.written = c, c
	q.synced = min(q.synced, c)
	q.min = min(q.min, c)
	q.maxPhys = prev.end()
	q.pending = q.pending[:0]
	if q.synced == c {
		q.unsynced = -1
	}
	q.mu.Unlock()
	return q.cutAfter(i, c*EntrySize-q.segs[i].base)
}

// DeleteBelow is retention after the commit log's oldest files were removed:
// minPhys is the new commit-log min offset. It removes whole files, oldest
// first, whose last entry points below minPhys (never the newest file, so
// MaxOffset survives a restart), then moves MinOffset to the first entry
// pointing at or above minPhys. It returns the number of files removed.
// The engine also calls it once after Open with the recovered commit-log
// min offset (RocketMQ's "correct min offset" step). Called from the
// engine's maintenance goroutine; Put and readers may run concurrently.
func (q *Queue) DeleteBelow(minPhys int64) (int, error) {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if err := q.writeOut(); err != nil {
		return 0, err
	}
	removed := 0
	for len(q.segs) > 1 { // q.segs only changes under wmu, which we hold
		s := q.segs[0]
		last, err := q.loadEntry((s.base+q.fileSize)/EntrySize - 1)
		if err != nil {
			return removed, err
		}
		if last.CommitLogOffset >= minPhys {
			break
		}
		q.mu.Lock()
		q.segs = q.segs[1:]
		q.min = max(q.min, q.segs[0].base/EntrySize)
		q.mu.Unlock()
		if err := q.removeSegments([]*segment{s}); err != nil {
			return removed, err
		}
		removed++
	}
	if err := q.syncDirs(); err != nil {
		return removed, err
	}
	return removed, q.raiseMin(minPhys)
}

// raiseMin moves min to the first written entry pointing at or above
// minPhys. Called with wmu held.
func (q *Queue) raiseMin(minPhys int64) error {
	q.mu.RLock()
	lo, hi, empty := q.min, q.written, q.maxPhys < 0
	q.mu.RUnlock()
	if empty {
		return nil
	}
	c, err := q.searchPhys(lo, hi, minPhys)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.min = max(q.min, c)
	q.mu.Unlock()
	return nil
}

// searchPhys returns the first offset in [lo, hi) whose entry's commit-log
// offset is ≥ phys, or hi. Entries are in commit-log order. Called with wmu
// held and hi ≤ written, so every entry read is in a file.
func (q *Queue) searchPhys(lo, hi, phys int64) (int64, error) {
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := q.loadEntry(mid)
		if err != nil {
			return 0, err
		}
		if e.CommitLogOffset >= phys {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// SearchOffsetByTime returns the queue offset of the message stored at ts
// (SEARCH_OFFSET_BY_TIMESTAMP). storeTime returns the store timestamp of
// the record at (phys, size) in the commit log. The search is a binary
// search over [MinOffset, MaxOffset) by store time:
//
//   - an exact match wins (the first one when several share ts);
//   - otherwise the nearer of the two neighbours, the earlier on a tie;
//   - ts after every message gives the last entry (MaxOffset − 1), never
//     MaxOffset; ts before every message gives MinOffset;
//   - an empty queue gives MinOffset (0 for a never-written queue, as
//     RocketMQ answers 0 when there is nothing);
//   - a negative store time (record unreadable) gives 0, as RocketMQ does.
//
// RocketMQ searches only the one file picked by file mtime; searching the
// whole queue gives the same answer when times are monotonic, and a better
// one at file boundaries. Any goroutine may call it.
func (q *Queue) SearchOffsetByTime(ts int64, storeTime func(phys int64, size int32) (int64, error)) (int64, error) {
	q.mu.RLock()
	lo, hi := q.min, q.max
	q.mu.RUnlock()
	if lo >= hi {
		return lo, nil
	}
	s := timeSearch{q: q, storeTime: storeTime}
	l, h := lo, hi
	for l < h {
		mid := l + (h-l)/2
		t := s.at(mid)
		if s.stop() {
			return s.result()
		}
		if t >= ts {
			h = mid
		} else {
			l = mid + 1
		}
	}
	if l == hi {
		return hi - 1, nil
	}
	rt := s.at(l)
	var lt int64
	if l > lo {
		lt = s.at(l - 1)
	}
	switch {
	case s.stop():
		return s.result()
	case rt == ts || l == lo:
		return l, nil
	case ts-lt <= rt-ts:
		return l - 1, nil
	}
	return l, nil
}

// timeSearch reads store times and remembers the first failure.
type timeSearch struct {
	q         *Queue
	storeTime func(int64, int32) (int64, error)
	err       error
	negative  bool
}

func (s *timeSearch) at(off int64) int64 {
	if s.stop() {
		return 0
	}
	e, err := s.q.Get(off)
	if err != nil {
		s.err = err
		return 0
	}
	t, err := s.storeTime(e.CommitLogOffset, e.Size)
	switch {
	case err != nil:
		s.err = err
	case t < 0:
		s.negative = true
	}
	return t
}

func (s *timeSearch) stop() bool { return s.err != nil || s.negative }

func (s *timeSearch) result() (int64, error) { return 0, s.err }
