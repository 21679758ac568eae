package commitlog

// The in-memory window of the log (mirror.go). Each time the written end
// enters another chunk, the flush loop drops what fell behind the window
// (cheap: the pages move to the pool, pool.go; done before the new written
// end is published, so a reader that sees it finds the window already
// moved), and then wakes the mirror loop, which populates the chunks ahead
// of the written end so that appenders rarely take a page fault (slow
// when the memory is fresh, so off the flush loop). The mirror loop owns
// no log state: it reads the published segments and the written end.

// Defaults of the window (Config.MirrorWindow, Config.MirrorChunk): at
// 100k msg/s of 1 KiB, 256 MiB is the last ~2.5 s of the log, far more
// than consumers at the tail and a replica in sync need; older reads go to
// the files (and the page cache), as they do in the Java broker.
const (
	defaultMirrorChunk  = 32 << 20
	defaultMirrorWindow = 256 << 20
	mirrorAheadChunks   = 2 // chunks populated ahead of the written end
	// mirrorPoolChunks bounds the dropped chunks kept for reuse (pool.go).
	// In steady state each chunk the written end enters drops one and
	// populates one, so the pool holds one or two.
	mirrorPoolChunks = mirrorAheadChunks + 2
)

// startWindow is where Open populates the tail segment up to, from rel:
// the whole working set of the window (the window, the chunks ahead and
// the one being written). Fresh memory is costly to touch here (pool.go)
// and is touched once, before the broker takes traffic; afterwards each
// chunk the window drops is the next one populated.
func (l *Log) startWindow(rel int64) int64 {
	return rel + l.cfg.MirrorWindow + (mirrorAheadChunks+1)*l.cfg.MirrorChunk
}

// mirrorLoop runs until Close.
func (l *Log) mirrorLoop() {
	defer close(l.keeperDone)
	for {
		select {
		case <-l.stop:
			return
		case <-l.keepKick:
		}
		l.keepMirrors()
	}
}

// dropBehindWritten is called by the flush loop once [.., written) is in
// the files and before it publishes written: when written entered another
// chunk (counted within its segment, whose size need not be a multiple of
// the chunk) it drops what fell behind the window, and reports that the
// mirror loop is to be woken (kickPopulate, after written is published).
func (l *Log) dropBehindWritten(st *flushState, written int64) (moved bool) {
	c := written/l.cfg.SegmentSize*(l.cfg.SegmentSize/l.cfg.MirrorChunk+1) + written%l.cfg.SegmentSize/l.cfg.MirrorChunk
	if c == st.keptChunk {
		return false
	}
	st.keptChunk = c
	l.dropBehind(written - l.cfg.MirrorWindow)
	return true
}

// kickPopulate wakes the mirror loop.
func (l *Log) kickPopulate() {
	if l.cfg.Prefault {
		select {
		case l.keepKick <- struct{}{}:
		default:
		}
	}
}

// dropBehind drops the chunks (and whole mirrors) that end at or below low.
func (l *Log) dropBehind(low int64) {
	segs := l.segments()
	tail := segs[len(segs)-1]
	for _, s := range segs {
		if s.base >= low {
			return // this segment and the later ones lie in the window
		}
		whole := s != tail && s.base+l.cfg.SegmentSize <= low
		if m := s.mem.Load(); m != nil && m.acquire() {
			m.dropBelow(min(low-s.base, l.cfg.SegmentSize)) // to the pool
			m.release()
		}
		if whole {
			s.dropMirror()
		}
	}
}

// keepMirrors populates mirrorAheadChunks chunks past the written end:
// in the tail segment, and in the segment prepared after it when that
// target passes the tail's end.
func (l *Log) keepMirrors() {
	written := l.written.Load()
	target := written + mirrorAheadChunks*l.cfg.MirrorChunk
	segs := l.segments()
	tail := segs[len(segs)-1]
	l.populateAhead(tail, target)
	if next := l.upcoming.Load(); next != nil && next.base == tail.base+l.cfg.SegmentSize && target > next.base {
		l.populateAhead(next, target)
	}
}

// populateAhead populates seg's mirror up to the log offset target,
// pausing between fresh steps while it is more than a chunk ahead of the
// written end.
func (l *Log) populateAhead(seg *segment, target int64) {
	m := seg.mem.Load()
	if m == nil || !m.acquire() {
		return
	}
	defer m.release()
	p := pacer{stop: l.stop, urgent: func() bool { return seg.base+m.populated.Load()-l.written.Load() < m.chunk }}
	m.populate(target-seg.base, p)
}
