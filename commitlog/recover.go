package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

// CorruptionError reports an invalid record that valid records follow: data
// the log cannot vouch for sits in the middle of good data, so recovery
// stops instead of dropping what follows.
type CorruptionError struct {
	File       string // segment file
	FileOffset int64  // offset of the bad record in the file
	Offset     int64  // its log offset
	NextValid  int64  // log offset of the first valid record after it
	Reason     string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("commitlog: corrupt record in %s at file offset %d (log offset %d): %s; a valid record follows at log offset %d",
		e.File, e.FileOffset, e.Offset, e.Reason, e.NextValid)
}

var magicBytes = binary.BigEndian.AppendUint32(nil, message.MagicMessage)

// recover finds the end of the log: from the checkpoint's offset it
// validates every frame (magic, field lengths, body CRC, frame CRC) up to the
// first invalid one, tells a torn tail (zeros, or garbage within one write
// of the durable offset) from corruption, wipes a torn tail, and sets up the
// tail segment. Runs before the log's goroutines start.
func (l *Log) recover() error {
	bases, err := l.listSegments()
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		s, err := l.createSegment(0, nil)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		return nil
	}
	start := l.cfg.Recovery.Offset
	if start < bases[0] || start > bases[len(bases)-1]+l.cfg.SegmentSize {
		start = bases[0]
	}
	end, ts, err := l.scan(bases, start)
	if err != nil {
		return err
	}
	ts = max(ts, l.cfg.Recovery.Timestamp)
	return l.openSegments(bases, end, ts)
}

// listSegments returns the segment bases, checking they are contiguous.
func (l *Log) listSegments() ([]int64, error) {
	names, err := l.fs.List(l.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	var bases []int64
	for _, n := range names {
		if b, ok := parseSegmentName(n); ok {
			if b%l.cfg.SegmentSize != 0 || (len(bases) > 0 && b != bases[len(bases)-1]+l.cfg.SegmentSize) {
				return nil, fmt.Errorf("commitlog: segment %s does not follow its predecessor (segment size %d): missing or foreign file", n, l.cfg.SegmentSize)
			}
			bases = append(bases, b)
		}
	}
	return bases, nil
}

// scan validates frames from start and returns the end of the valid log and
// the store timestamp of the last valid record.
func (l *Log) scan(bases []int64, start int64) (end, ts int64, err error) {
	for i, base := range bases {
		if base+l.cfg.SegmentSize <= start {
			continue
		}
		data, unmap, err := l.mapSegment(base)
		if err != nil {
			return 0, 0, err
		}
		pos := max(start-base, 0)
		var reason string
		pos, ts, reason = l.scanSegment(data, pos, ts)
		unmap()
		if reason == "" {
			continue // ended with a blank: go on in the next segment
		}
		end = base + pos
		if l.cfg.Recovery.Clean && end == l.cfg.Recovery.Offset {
			return end, ts, nil // clean shutdown: the end is where the checkpoint says
		}
		return end, ts, l.classify(bases[i:], end, reason)
	}
	// every segment ended with a blank: the log ends at the next segment
	return bases[len(bases)-1] + l.cfg.SegmentSize, ts, nil
}

// scanSegment walks frames from pos; it returns where the valid frames end
// and why (reason empty when the segment ends with a valid blank marker).
func (l *Log) scanSegment(data []byte, pos, ts int64) (int64, int64, string) {
	for {
		size, recTS, reason := checkFrame(data, pos)
		switch {
		case reason != "":
			return pos, ts, reason
		case size < 0:
			return pos, ts, ""
		}
		ts = recTS
		pos += size + trailerSize
	}
}

// checkFrame validates the frame at pos. It returns the record size and
// store timestamp, size -1 for a valid blank marker, or a reason the bytes
// are not a valid frame.
func checkFrame(data []byte, pos int64) (size, storeTS int64, reason string) {
	left := int64(len(data)) - pos
	if left < blankSize {
		return 0, 0, "no room for a blank marker at the end of the segment"
	}
	size = int64(int32(binary.BigEndian.Uint32(data[pos:])))
	magic := binary.BigEndian.Uint32(data[pos+4:])
	switch {
	case magic == message.MagicBlank && size == left:
		return -1, 0, ""
	case magic != message.MagicMessage:
		return 0, 0, fmt.Sprintf("bad magic %#x", magic)
	case size < message.MinRecordSize || size+trailerSize+blankSize > left:
		return 0, 0, fmt.Sprintf("record size %d out of range", size)
	}
	rec := data[pos : pos+size]
	v, err := message.Parse(rec)
	if err != nil {
		return 0, 0, err.Error()
	}
	if !v.CheckBodyCRC() {
		return 0, 0, "body CRC mismatch"
	}
	if crc32.Checksum(rec, castagnoli) != binary.BigEndian.Uint32(data[pos+size:]) {
		return 0, 0, "frame CRC mismatch"
	}
	return size, v.StoreTimestamp, ""
}

// classify decides whether the invalid bytes at end are a torn tail. With
// no valid frame after end (in this or a later segment) they are: the write
// the crash interrupted left zeros or a partial record. A valid frame after
// end is corruption when data reaches MaxWrite or further past the block
// holding end (the scan starts at the checkpoint's durable offset, so end is
// past it): one
// interrupted write (at most MaxWrite bytes, starting at or before end's
// block) cannot explain it. Within that reach, blocks of the interrupted
// write may have reached the disk out of order (power loss without FUA), so
// it is a torn tail. A torn tail is wiped, keeping a .broken copy.
func (l *Log) classify(bases []int64, end int64, reason string) error {
	next := int64(-1)
	lastNonZero := end - 1
	for _, base := range bases {
		data, unmap, err := l.mapSegment(base)
		if err != nil {
			return err
		}
		from := max(end-base, 0)
		if nz := lastNonZeroByte(data, from); nz >= 0 {
			lastNonZero = base + nz
		}
		if next < 0 {
			if q := findValidFrame(data, from+1); q >= 0 {
				next = base + q
			}
		}
		unmap()
	}
	// Under SYNC_FLUSH at most MaxWrite bytes are written but unsynced at
	// any time (the flush loop syncs each piece), so valid data beyond that
	// reach is acknowledged data after a bad record: corruption. Under
	// ASYNC_FLUSH nothing after the last fdatasync was promised and up to
	// a flush interval of writes may be unsynced, so it is a torn tail.
	if next >= 0 && l.cfg.Policy.Durable() && lastNonZero >= alignDown(end)+l.cfg.MaxWrite {
		base := segmentBase(bases, end)
		return &CorruptionError{File: l.segmentPath(base), FileOffset: end - base, Offset: end, NextValid: next, Reason: reason}
	}
	if lastNonZero < end {
		return nil // zeroed tail: nothing to wipe
	}
	l.log.Warn("commitlog: torn tail truncated", "file", l.segmentPath(segmentBase(bases, end)),
		"offset", end, "bytes", lastNonZero+1-end, "reason", reason)
	return l.wipe(bases, end, lastNonZero+1)
}

func segmentBase(bases []int64, off int64) int64 {
	b := bases[0]
	for _, x := range bases {
		if x <= off {
			b = x
		}
	}
	return b
}

// lastNonZeroByte returns the index of the last non-zero byte at or after
// from, or -1.
func lastNonZeroByte(data []byte, from int64) int64 {
	for i := int64(len(data)) - 1; i >= from; {
		lo := max(i-4095, from)
		if !allZero(data[lo : i+1]) {
			for j := i; j >= lo; j-- {
				if data[j] != 0 {
					return j
				}
			}
		}
		i = lo - 1
	}
	return -1
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// findValidFrame returns the position of the first valid message frame at or
// after from, or -1.
func findValidFrame(data []byte, from int64) int64 {
	for from+8 <= int64(len(data)) {
		i := bytes.Index(data[from+4:], magicBytes)
		if i < 0 {
			return -1
		}
		q := from + int64(i)
		if size, _, reason := checkFrame(data, q); reason == "" && size > 0 {
			return q
		}
		from = q + 1
	}
	return -1
}

// wipe keeps a copy of the torn bytes [from, to) in a .broken file beside
// the segment, then zeroes them and syncs.
func (l *Log) wipe(bases []int64, from, to int64) error {
	for _, base := range bases {
		lo, hi := max(from, base), min(to, base+l.cfg.SegmentSize)
		if lo >= hi {
			continue
		}
		if err := l.wipeSegment(base, lo-base, hi-base); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) wipeSegment(base, lo, hi int64) error {
	path := l.segmentPath(base)
	f, err := l.fs.Open(path, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	torn := make([]byte, hi-lo)
	if _, err := f.ReadAt(torn, lo); err != nil {
		return fmt.Errorf("commitlog: read torn tail of %s: %w", path, err)
	}
	broken := fmt.Sprintf("%s.broken-%d", path, lo)
	if bf, err := l.fs.Open(broken, vfs.Create); err == nil {
		_, werr := bf.WriteAt(torn, 0)
		if werr == nil {
			werr = bf.Sync()
		}
		bf.Close()
		if werr != nil {
			return werr
		}
	}
	clear(torn)
	if _, err := f.WriteAt(torn, lo); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return l.fs.SyncDir(l.cfg.Dir)
}

// mapSegment maps a segment read-only; the returned func unmaps it.
func (l *Log) mapSegment(base int64) ([]byte, func(), error) {
	path := l.segmentPath(base)
	f, err := l.fs.Open(path, vfs.ReadOnly)
	if err != nil {
		return nil, nil, fmt.Errorf("commitlog: %w", err)
	}
	size, err := f.Size()
	if err == nil && size < l.cfg.SegmentSize {
		// An interrupted preallocation leaves a short file; it holds no
		// data the log ever acknowledged past its size, so complete it.
		f.Close()
		if f, err = l.fs.Open(path, 0); err == nil {
			err = l.fs.Preallocate(f, l.cfg.SegmentSize)
			f.Close()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("commitlog: completing short segment %s: %w", path, err)
		}
		return l.mapSegment(base)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	m, err := l.fs.Map(f, l.cfg.SegmentSize, false)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("commitlog: map %s: %w", path, err)
	}
	return m.Bytes(), func() { m.Close(); f.Close() }, nil
}

// openSegments opens the segments up to the one holding end for reading,
// makes that one the tail (write handle, mirror holding its last partial
// block) and sets the offsets.
func (l *Log) openSegments(bases []int64, end, ts int64) error {
	tailBase := end - end%l.cfg.SegmentSize
	for _, base := range bases {
		if base >= tailBase {
			break
		}
		rf, err := l.fs.Open(l.segmentPath(base), vfs.ReadOnly)
		if err != nil {
			return err
		}
		s := &segment{base: base, rf: rf}
		s.sealed.Store(l.cfg.SegmentSize)
		l.segs = append(l.segs, s)
	}
	s, err := l.openTail(tailBase, end)
	if err != nil {
		return err
	}
	l.segs = append(l.segs, s)
	l.tail, l.tailTS = end, ts
	l.written.Store(end)
	l.durable.Store(end)
	l.durTS.Store(ts)
	return nil
}

// openTail opens (creating if needed) the segment at base as the tail with
// the log ending at end.
func (l *Log) openTail(base, end int64) (*segment, error) {
	s, err := l.createSegment(base, nil) // reopens and completes an existing file
	if err != nil {
		return nil, err
	}
	s.valid = alignDown(end - base)
	m := s.mem.Load()
	if n := end - base - s.valid; n > 0 {
		if _, err := s.rf.ReadAt(m.buf[s.valid:end-base], s.valid); err != nil {
			s.close()
			return nil, fmt.Errorf("commitlog: load tail block: %w", err)
		}
	}
	return s, nil
}
