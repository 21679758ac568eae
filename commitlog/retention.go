package commitlog

import (
	"fmt"
	"time"
)

// SegmentInfo describes a segment for retention decisions.
type SegmentInfo struct {
	Base    int64
	Path    string
	ModTime time.Time // last write to the file
}

// SealedSegments lists the segments before the tail segment that are fully
// durable, oldest first: the only ones retention may remove (the flush loop
// may still sync a segment that is written but not durable).
func (l *Log) SealedSegments() ([]SegmentInfo, error) {
	l.mu.Lock()
	segs := l.segs[:len(l.segs)-1]
	l.mu.Unlock()
	durable := l.durable.Load()
	var out []SegmentInfo
	for _, s := range segs {
		if s.base+l.cfg.SegmentSize > durable {
			break
		}
		path := l.segmentPath(s.base)
		st, err := l.fs.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("commitlog: %w", err)
		}
		out = append(out, SegmentInfo{Base: s.base, Path: path, ModTime: st.ModTime()})
	}
	return out, nil
}

// RemoveSegmentsBefore deletes every durable sealed segment whose base is
// below base (retention); the log's minimum offset becomes the first
// remaining segment's base. A reader that pinned a removed segment's files
// before the removal keeps reading them (the files close with the last
// reader: see segment.files); readers arriving later get ErrNotFound.
func (l *Log) RemoveSegmentsBefore(base int64) (int, error) {
	l.mu.Lock()
	n := 0
	for n < len(l.segs)-1 && l.segs[n].base < base && l.segs[n].base+l.cfg.SegmentSize <= l.durable.Load() {
		n++
	}
	gone := append([]*segment(nil), l.segs[:n]...)
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.publish()
	l.mu.Unlock()
	var rmErr error
	for _, s := range gone {
		path := l.segmentPath(s.base)
		if s.wf == nil { // a segment recovery opened read-only: the reaper truncates through this
			if wf, err := l.fs.Open(path, 0); err == nil {
				s.wf = wf
			}
		}
		err := l.fs.Remove(path)
		if err != nil && rmErr == nil {
			rmErr = fmt.Errorf("commitlog: remove segment: %w", err)
		}
		if err == nil {
			s.reap = l.reaper // its space is freed in steps once unused (vfs.Reaper)
		}
	}
	var syncErr error
	if len(gone) > 0 && rmErr == nil {
		syncErr = l.fs.SyncDir(l.cfg.Dir)
	}
	// Only now drop the log's hold (the segments left segs either way):
	// a removed file is truncated only after its unlink is durable, so a
	// crash never leaves it linked and short.
	for _, s := range gone {
		s.close()
	}
	if rmErr != nil {
		return 0, rmErr
	}
	if syncErr != nil {
		return len(gone), syncErr
	}
	if len(gone) > 0 {
		l.log.Info("commitlog: retention removed segments", "count", len(gone), "minOffset", l.MinOffset())
	}
	return len(gone), nil
}
