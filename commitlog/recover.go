package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

// CorruptionError reports invalid data the log will not drop: a record
// below the checkpoint's durable offset that does not validate, or an
// invalid record that valid records follow further than one unsynced write
// could reach. Recovery stops instead of dropping what it cannot vouch for;
// the operator decides (see FORMAT.md, "Repair").
type CorruptionError struct {
	File       string // segment file
	FileOffset int64  // offset of the bad record in the file
	Offset     int64  // its log offset
	NextValid  int64  // log offset of the first valid record after it; -1: none found
	Durable    int64  // the checkpoint's durable offset
	Reason     string
}

func (e *CorruptionError) Error() string {
	var where string
	switch {
	case e.Offset < e.Durable:
		where = fmt.Sprintf("below the checkpoint's durable offset %d, so the record was durable", e.Durable)
	default:
		where = "valid records follow further than one unsynced write reaches"
	}
	next := "no valid record follows"
	if e.NextValid >= 0 {
		next = fmt.Sprintf("the next valid record is at log offset %d", e.NextValid)
	}
	return fmt.Sprintf("commitlog: corrupt record in %s at file offset %d (log offset %d): %s; %s; %s",
		e.File, e.FileOffset, e.Offset, e.Reason, where, next)
}

var magicBytes = binary.BigEndian.AppendUint32(nil, message.MagicMessage)

// recover finds the end of the log: from the checkpoint's offset it
// validates every frame (magic, field lengths, physical offset, body CRC,
// frame CRC) up to the first invalid one, tells a torn tail from corruption
// (judged by the policy that wrote the log), wipes a torn tail, and sets up
// the tail segment. Runs before the log's goroutines start.
func (l *Log) recover() error {
	bases, err := l.listSegments()
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		s, err := l.createSegment(0, 0, l.startWindow(0), nil)
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
	if bases, err = l.dropBeyond(bases, end); err != nil {
		return err
	}
	return l.openSegments(bases, end, ts)
}

// dropBeyond removes the segment files after the tail segment: prepared
// ahead before the crash, they hold no frame (a torn tail reaching into
// them was wiped above). Left in place, a failed re-preparation of the
// first of them would remove it and leave a gap the next Open refuses.
// The highest goes first, so an interrupted removal never leaves a gap.
func (l *Log) dropBeyond(bases []int64, end int64) ([]int64, error) {
	tailBase := end - end%l.cfg.SegmentSize
	keep := len(bases)
	for keep > 0 && bases[keep-1] > tailBase {
		keep--
	}
	if keep == len(bases) {
		return bases, nil
	}
	for i := len(bases) - 1; i >= keep; i-- {
		if err := l.fs.Remove(l.segmentPath(bases[i])); err != nil && !vfs.IsNotExist(err) {
			return nil, fmt.Errorf("commitlog: remove empty segment beyond the log end: %w", err)
		}
	}
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
		return nil, fmt.Errorf("commitlog: sync dir %s: %w", l.cfg.Dir, err)
	}
	l.log.Info("commitlog: removed empty segments beyond the log end", "count", len(bases)-keep, "end", end)
	return bases[:keep], nil
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
		pos, ts, reason = scanSegment(data, base, pos, ts)
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

// scanSegment walks frames from pos in the segment at base; it returns
// where the valid frames end and why (reason empty when the segment ends
// with a valid blank marker).
func scanSegment(data []byte, base, pos, ts int64) (int64, int64, string) {
	for {
		size, recTS, reason := checkFrame(data, base, pos)
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

// checkFrame validates the frame at pos of the segment at base. It returns
// the record size and store timestamp, size -1 for a valid blank marker, or
// a reason the bytes are not a valid frame. A record must name its own
// position (PHYSICALOFFSET): a record that a client embedded in a message
// body never passes for a frame.
func checkFrame(data []byte, base, pos int64) (size, storeTS int64, reason string) {
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
	if v.PhysOffset != base+pos {
		return 0, 0, fmt.Sprintf("record names physical offset %d", v.PhysOffset)
	}
	if !v.CheckBodyCRC() {
		return 0, 0, "body CRC mismatch"
	}
	if crc32.Checksum(rec, castagnoli) != binary.BigEndian.Uint32(data[pos+size:]) {
		return 0, 0, "frame CRC mismatch"
	}
	return size, v.StoreTimestamp, ""
}

// writer is the policy the tail is judged by: the checkpoint's record of
// the previous run's, or this run's when the checkpoint predates it.
func (l *Log) writer() Writer {
	if w := l.cfg.Recovery.Writer; w.Mode != flush.ModeUnknown {
		if w.MaxWrite <= 0 {
			w.MaxWrite = l.cfg.MaxWrite
		}
		return w
	}
	return l.Writer()
}

// reach is the end of what one unsynced write can explain when the first
// invalid frame is at end (SYNC_FLUSH). The flush loop writes a round in
// pieces of at most MaxWrite bytes, each starting at the block that holds
// the previous one's end and each synced before the next is written; so
// only the last piece is ever written but unsynced, and everything before
// it is intact. When the record at end is larger than a piece, its first
// pieces are durable (its header with them) and the unsynced piece starts
// at the latest in the block holding its last byte; otherwise it starts at
// the latest in end's block.
func reach(data []byte, base, end, maxWrite int64) int64 {
	from := alignDown(end)
	pos := end - base
	if pos+8 <= int64(len(data)) && binary.BigEndian.Uint32(data[pos+4:]) == message.MagicMessage {
		size := int64(int32(binary.BigEndian.Uint32(data[pos:])))
		if size >= message.MinRecordSize && pos+size+trailerSize+blankSize <= int64(len(data)) {
			from = max(from, alignDown(end+size+trailerSize-1))
		}
	}
	return from + maxWrite
}

// classify decides whether the invalid bytes at end are a torn tail or
// corruption (FORMAT.md, "Recovery"): below the checkpoint's durable
// offset they are corruption; under an ASYNC_FLUSH writer anything after
// the last sync may be missing or out of order, so they are torn; under a
// SYNC_FLUSH writer they are torn unless a valid frame ends beyond the
// reach of the one unsynced write (see reach). A torn tail is wiped,
// keeping a .broken copy.
func (l *Log) classify(bases []int64, end int64, reason string) error {
	w := l.writer()
	var next, validEnd, limit int64 = -1, -1, -1
	lastNonZero := end - 1
	for _, base := range bases {
		data, unmap, err := l.mapSegment(base)
		if err != nil {
			return err
		}
		if limit < 0 {
			limit = reach(data, base, end, w.MaxWrite)
		}
		from := max(end-base, 0)
		if nz := lastNonZeroByte(data, from); nz >= 0 {
			lastNonZero = base + nz
		}
		for q := from + 1; ; {
			if q = findValidFrame(data, base, q); q < 0 {
				break
			}
			size, _, _ := checkFrame(data, base, q)
			if next < 0 {
				next = base + q
			}
			validEnd = base + q + size + trailerSize
			q += size + trailerSize
		}
		unmap()
	}
	segBase := segmentBase(bases, end)
	corrupt := &CorruptionError{File: l.segmentPath(segBase), FileOffset: end - segBase, Offset: end,
		NextValid: next, Durable: l.cfg.Recovery.Durable, Reason: reason}
	switch {
	case end < l.cfg.Recovery.Durable:
		return corrupt
	case w.Mode == flush.ModeSync && validEnd > limit:
		return corrupt
	}
	if lastNonZero < end {
		return nil // zeroed tail: nothing to wipe
	}
	l.log.Warn("commitlog: torn tail truncated", "file", l.segmentPath(segBase),
		"offset", end, "bytes", lastNonZero+1-end, "reason", reason, "writer", w.Mode.String())
	// a valid frame's CRC may end in zeros: the copy reaches its end
	return l.wipe(bases, end, max(lastNonZero+1, validEnd))
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
// after from in the segment at base, or -1.
func findValidFrame(data []byte, base, from int64) int64 {
	for from+8 <= int64(len(data)) {
		i := bytes.Index(data[from+4:], magicBytes)
		if i < 0 {
			return -1
		}
		q := from + int64(i)
		if size, _, reason := checkFrame(data, base, q); reason == "" && size > 0 {
			return q
		}
		from = q + 1
	}
	return -1
}

// wipe keeps a copy of the torn bytes [from, to) in a .broken file beside
// the segment, then zeroes them and syncs. A torn tail held nothing
// acknowledged, so failing to keep the copy (a full disk) only costs the
// copy: it is logged, and the bytes are zeroed anyway.
func (l *Log) wipe(bases []int64, from, to int64) error {
	for _, base := range bases {
		lo, hi := max(from, base), min(to, base+l.cfg.SegmentSize)
		if lo >= hi {
			continue
		}
		if err := l.wipeSegment(base, lo-base, hi-base, false); err != nil {
			return err
		}
	}
	return nil
}

// wipeSegment copies [lo, hi) of the segment at base to
// <segment>.broken-<lo>, zeroes the range and syncs. With mustCopy a
// failure to keep the copy fails the wipe before anything is zeroed.
func (l *Log) wipeSegment(base, lo, hi int64, mustCopy bool) error {
	path := l.segmentPath(base)
	f, err := l.fs.Open(path, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	torn := make([]byte, hi-lo)
	if _, err := f.ReadAt(torn, lo); err != nil {
		return fmt.Errorf("commitlog: read %s [%d, %d): %w", path, lo, hi, err)
	}
	broken := fmt.Sprintf("%s.broken-%d", path, lo)
	err = l.keepCopy(broken, torn)
	if err == nil {
		// The copy's directory entry must be durable before the bytes are
		// zeroed, or a crash in between loses both.
		err = l.fs.SyncDir(l.cfg.Dir)
	}
	if err != nil {
		if mustCopy {
			return err
		}
		l.log.Error("commitlog: could not keep a copy of the torn tail; zeroing it anyway", "file", broken, "err", err)
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

// keepCopy writes b to a new file at path and syncs it (its directory is
// synced by the caller).
func (l *Log) keepCopy(path string, b []byte) error {
	bf, err := l.fs.Open(path, vfs.Create)
	if err != nil {
		return fmt.Errorf("commitlog: keep a copy in %s: %w", path, err)
	}
	_, err = bf.WriteAt(b, 0)
	if err == nil {
		err = bf.Sync()
	}
	if cerr := bf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("commitlog: keep a copy in %s: %w", path, err)
	}
	return nil
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
			if err = l.fs.Preallocate(f, l.cfg.SegmentSize); err == nil {
				err = f.Sync()
			}
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
		s := newSegment(base)
		s.rf = rf
		s.sealed.Store(l.cfg.SegmentSize)
		l.segs = append(l.segs, s)
		if err := l.syncUnvouched(rf, base); err != nil {
			return err
		}
	}
	s, err := l.openTail(tailBase, end) // createSegment syncs the tail
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

// syncUnvouched syncs the sealed segment at base (through its read
// handle: fdatasync needs no write access) unless the previous run shut
// down cleanly or the checkpoint's durable offset covers it. The offsets
// are about to call the whole log durable, and a process killed under
// ASYNC_FLUSH may have left its last writes in the page cache only: a
// power loss then would take bytes below a durable offset the next
// checkpoint records.
func (l *Log) syncUnvouched(rf vfs.File, base int64) error {
	if l.cfg.Recovery.Clean || base+l.cfg.SegmentSize <= l.cfg.Recovery.Durable {
		return nil
	}
	if err := rf.Sync(); err != nil {
		return fmt.Errorf("commitlog: sync %s at recovery: %w", rf.Name(), err)
	}
	return nil
}

// openTail opens (creating if needed) the segment at base as the tail with
// the log ending at end.
func (l *Log) openTail(base, end int64) (*segment, error) {
	valid := alignDown(end - base)
	s, err := l.createSegment(base, valid, l.startWindow(valid), nil) // reopens and completes an existing file
	if err != nil {
		return nil, err
	}
	s.valid = valid
	m := s.mem.Load()
	if n := end - base - s.valid; n > 0 {
		m.claim(end - base)
		if _, err := s.rf.ReadAt(m.buf[s.valid:end-base], s.valid); err != nil {
			s.close()
			return nil, fmt.Errorf("commitlog: load tail block: %w", err)
		}
	}
	return s, nil
}
