package commitlog

import (
	"fmt"

	"github.com/mqd/mqd/internal/vfs"
)

// Cut is what TruncateAt did.
type Cut struct {
	Offset    int64    // the log now ends here
	Timestamp int64    // store time of the last record before Offset (0: none)
	Kept      []string // files holding the bytes cut away
}

// TruncateAt cuts the closed log in cfg.Dir at off, for an operator's
// repair after Open reported a CorruptionError (FORMAT.md, "Repair"). off
// must be a record boundary: the frames from the start of its segment up to
// it must validate, so the log keeps only intact records. The bytes from
// off to the end of its segment's data are copied to
// <segment>.broken-<off> and zeroed; every later segment is renamed to
// <segment>.broken (one holding only zeros, preallocated, is removed).
// Nothing else is removed, and nothing is changed when the copy cannot be
// kept. The caller must hold the store's lock and lower its
// checkpoint to off afterwards.
func TruncateAt(fsys vfs.FS, cfg Config, off int64) (Cut, error) {
	l, p, err := planCut(fsys, cfg, off)
	if err != nil {
		return Cut{}, err
	}
	cut, base, bases, end := p.cut, p.base, p.bases, p.dataEnd
	if end > off-base {
		if err := l.wipeSegment(base, off-base, end, true); err != nil {
			return Cut{}, err
		}
		cut.Kept = append(cut.Kept, fmt.Sprintf("%s.broken-%d", l.segmentPath(base), off-base))
	}
	for _, b := range bases {
		if b <= base {
			continue
		}
		path := l.segmentPath(b)
		if empty, err := l.segmentEmpty(b); err != nil {
			return cut, err
		} else if empty { // a preallocated segment: all zeros, nothing to keep
			if err := fsys.Remove(path); err != nil {
				return cut, fmt.Errorf("commitlog: remove empty %s: %w", path, err)
			}
			continue
		}
		if err := fsys.Rename(path, path+".broken"); err != nil {
			return cut, fmt.Errorf("commitlog: move %s aside: %w", path, err)
		}
		cut.Kept = append(cut.Kept, path+".broken")
	}
	if err := fsys.SyncDir(cfg.Dir); err != nil {
		return cut, err
	}
	l.log.Warn("commitlog: log truncated by repair", "offset", off, "kept", cut.Kept)
	return cut, nil
}

// segmentEmpty reports whether the segment at base holds only zeros.
func (l *Log) segmentEmpty(base int64) (bool, error) {
	data, unmap, err := l.mapSegment(base)
	if err != nil {
		return false, err
	}
	defer unmap()
	return lastNonZeroByte(data, 0) < 0, nil
}

// CheckTruncate validates a cut at off as TruncateAt would, changing
// nothing (the returned Cut lists no files).
func CheckTruncate(fsys vfs.FS, cfg Config, off int64) (Cut, error) {
	_, p, err := planCut(fsys, cfg, off)
	return p.cut, err
}

// cutPlan is a validated cut.
type cutPlan struct {
	cut     Cut
	bases   []int64
	base    int64 // segment holding the cut
	dataEnd int64 // past its last non-zero byte and its intact frames from the cut, relative to base
}

// planCut validates a cut at off: off must be reached by walking intact
// frames from the start of its segment.
func planCut(fsys vfs.FS, cfg Config, off int64) (*Log, cutPlan, error) {
	if err := cfg.defaults(); err != nil {
		return nil, cutPlan{}, err
	}
	l := &Log{cfg: cfg, fs: fsys, log: cfg.Logger}
	bases, err := l.listSegments()
	if err != nil {
		return nil, cutPlan{}, err
	}
	if len(bases) == 0 || off < bases[0] || off >= bases[len(bases)-1]+cfg.SegmentSize {
		return nil, cutPlan{}, fmt.Errorf("commitlog: offset %d is outside the log's segments", off)
	}
	base := segmentBase(bases, off)
	cut := Cut{Offset: off}
	data, unmap, err := l.mapSegment(base)
	if err != nil {
		return nil, cutPlan{}, err
	}
	defer unmap()
	var p, prev int64
	for p < off-base {
		size, recTS, why := checkFrame(data, base, p)
		if why != "" || size < 0 {
			if why == "" {
				why = "the segment's end marker"
			}
			return nil, cutPlan{}, fmt.Errorf("commitlog: cannot truncate at %d: the intact records of %s end at log offset %d (%s); truncate there or below",
				off, l.segmentPath(base), base+p, why)
		}
		cut.Timestamp = recTS
		prev, p = p, p+size+trailerSize
	}
	if p != off-base {
		return nil, cutPlan{}, fmt.Errorf("commitlog: cannot truncate at %d: it is inside the record at log offset %d", off, base+prev)
	}
	// The copy reaches the end of the intact frames after the cut: a
	// frame's CRC may end in zero bytes, which the last non-zero byte
	// misses (1 record in 256).
	intact, _, _ := scanSegment(data, base, p, 0)
	end := max(intact, lastNonZeroByte(data, p)+1)
	return l, cutPlan{cut: cut, bases: bases, base: base, dataEnd: end}, nil
}
