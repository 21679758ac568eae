package commitlog

// The in-memory window of the log (mirror.go). Each time the written end
// enters another chunk, the flush loop drops what fell behind the window
// (cheap: a madvise; done before the new written end is published, so a
// reader that sees it finds the window already moved), and then wakes the
// mirror loop, which populates the tail segment's chunks ahead of the
// written end so that appenders rarely take a page fault (slow when the
// memory is fresh, so off the flush loop). The mirror loop owns no log
// state: it reads the published segments and the written end.

// Defaults of the window (Config.MirrorWindow, Config.MirrorChunk): at
// 100k msg/s of 1 KiB, 256 MiB is the last ~2.5 s of the log, far more
// than consumers at the tail and a replica in sync need; older reads go to
// the files (and the page cache), as they do in the Java broker.
const (
	defaultMirrorChunk  = 32 << 20
	defaultMirrorWindow = 256 << 20
	mirrorAheadChunks   = 2 // chunks populated ahead of the written end
)

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
		if s != tail && s.base+l.cfg.SegmentSize <= low {
			s.dropMirror()
			continue
		}
		if m := s.mem.Load(); m != nil && m.acquire() {
			m.dropBelow(low - s.base)
			m.release()
		}
	}
}

// keepMirrors populates ahead of the written end in the tail segment.
func (l *Log) keepMirrors() {
	segs := l.segments()
	l.populateAhead(segs[len(segs)-1], l.written.Load())
}

// populateAhead populates seg's mirror up to mirrorAheadChunks chunks past
// written, pausing between steps while it is more than a chunk ahead.
func (l *Log) populateAhead(seg *segment, written int64) {
	m := seg.mem.Load()
	if m == nil || !m.acquire() {
		return
	}
	defer m.release()
	p := pacer{stop: l.stop, urgent: func() bool { return m.populated.Load()-(l.written.Load()-seg.base) < m.chunk }}
	m.populate(written-seg.base+mirrorAheadChunks*m.chunk, p)
}
