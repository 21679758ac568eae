package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mqd/mqd/internal/message"
)

// ErrNotFound is returned for offsets outside the readable log.
var ErrNotFound = fmt.Errorf("commitlog: offset not in the log")

func (l *Log) segments() []*segment { return *l.view.Load() }

// ReadRecord copies the bytes [phys, phys+size) — a record (size as
// recorded in a consume-queue entry), a record header, or a span of
// records — into dst (grown if needed) and returns them. Only offsets
// below Written are readable. Recent records come from memory, older ones
// from the file. The bytes are not checked: a caller that serves or
// dispatches a record read with ReadRecord checks it with CheckRecord, or
// uses ReadVerified.
func (l *Log) ReadRecord(phys int64, size int32, dst []byte) ([]byte, error) {
	seg, rel, err := l.locateRead(phys, int64(size))
	if err != nil {
		return nil, err
	}
	dst = grow(dst, int(size))
	if m := seg.mem.Load(); m != nil && rel >= seg.valid && m.hold(rel, int64(size)) {
		copy(dst, m.buf[rel:rel+int64(size)])
		m.unhold(rel, int64(size))
		return dst, nil
	}
	if !seg.acquireFiles() {
		return nil, fmt.Errorf("%w: segment %d was removed", ErrNotFound, seg.base)
	}
	defer seg.releaseFiles()
	if hook := beforeFileRead; hook != nil {
		hook()
	}
	if _, err := seg.rf.ReadAt(dst, rel); err != nil {
		return nil, fmt.Errorf("commitlog: read %s at %d: %w", seg.rf.Name(), rel, err)
	}
	return dst, nil
}

// beforeFileRead, when set by a test, runs between a reader pinning a
// segment's files and its pread (to hold a reader across a removal).
var beforeFileRead func()

// locateRead finds the segment holding [phys, phys+n), which must lie
// below Written, inside the log and inside one segment.
func (l *Log) locateRead(phys, n int64) (*segment, int64, error) {
	if phys < l.MinOffset() || phys+n > l.written.Load() || n <= 0 {
		return nil, 0, fmt.Errorf("%w: [%d,+%d) outside [%d,%d)", ErrNotFound, phys, n, l.MinOffset(), l.written.Load())
	}
	seg := segmentAt(l.segments(), phys)
	rel := phys - seg.base
	if rel+n > l.cfg.SegmentSize {
		return nil, 0, fmt.Errorf("%w: record crosses a segment end", ErrNotFound)
	}
	return seg, rel, nil
}

// ReadVerified reads the record of size bytes at phys together with its
// CRC-32C trailer and returns the record (dst grown if needed) only when
// the trailer matches: bytes a disk damaged are never served.
func (l *Log) ReadVerified(phys int64, size int32, dst []byte) ([]byte, error) {
	frame, err := l.ReadRecord(phys, size+TrailerSize, dst)
	if err != nil {
		return nil, err
	}
	if err := CheckRecord(frame, phys); err != nil {
		return nil, err
	}
	return frame[:size], nil
}

// TrailerSize is the size of the CRC-32C trailer that follows every record
// in the log (FORMAT.md): a record of n bytes occupies n+TrailerSize.
const TrailerSize = trailerSize

// ErrChecksum reports a record whose bytes do not match its CRC-32C
// trailer: the disk (or something below it) changed them.
var ErrChecksum = errors.New("commitlog: record does not match its checksum")

// CheckRecord checks frame, a record followed by its TrailerSize-byte
// CRC-32C trailer read from log offset phys.
func CheckRecord(frame []byte, phys int64) error {
	n := len(frame) - trailerSize
	if n < 0 || crc32Checksum(frame[:n]) != binary.BigEndian.Uint32(frame[n:]) {
		return fmt.Errorf("%w: record of %d bytes at log offset %d", ErrChecksum, max(n, 0), phys)
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// Iterator walks records in log order, skipping blank markers. It is used by
// one goroutine (the dispatcher, recovery checks, replication).
type Iterator struct {
	l   *Log
	off int64
	seg *segment
	m   *mirror // the mapping, held while iterating a mirrored segment
	// c0..c1 are the chunks of m held for the last bytes returned; held
	// is false when none are.
	c0, c1 int
	held   bool
	// win holds bytes [winAt, winAt+len(win)) of seg's file: records not
	// in memory are read a megabyte at a time, not two preads per record.
	win   []byte
	winAt int64
}

// readAhead is the size of one file read of an Iterator.
const readAhead = 1 << 20

// NewIterator starts at from, which must be a record boundary.
func (l *Log) NewIterator(from int64) *Iterator { return &Iterator{l: l, off: from} }

// Offset is where the next record starts.
func (it *Iterator) Offset() int64 { return it.off }

// Next returns the record at the iterator's offset and advances, or nil when
// the offset reached limit. The slice is valid until the next call.
func (it *Iterator) Next(limit int64) (phys int64, rec []byte, err error) {
	phys, frame, err := it.NextFrame(limit)
	if frame == nil {
		return phys, nil, err
	}
	return phys, frame[:len(frame)-trailerSize], err
}

// NextFrame is Next returning the whole frame, the record and its CRC-32C
// trailer: a master streams frames as stored. A trailer in memory was
// computed by this log's append, copied from a replicated frame that
// CheckFrames checked, or loaded with a tail that recovery checked; one
// read from the file is checked here; so it is not computed again.
func (it *Iterator) NextFrame(limit int64) (phys int64, frame []byte, err error) {
	for it.off < limit {
		if err := it.locate(); err != nil {
			return 0, nil, err
		}
		rel := it.off - it.seg.base
		hdr, _, err := it.bytes(rel, 8)
		if err != nil {
			return 0, nil, err
		}
		size := int64(int32(binary.BigEndian.Uint32(hdr)))
		if binary.BigEndian.Uint32(hdr[4:]) == message.MagicBlank {
			it.off = it.seg.base + it.l.cfg.SegmentSize
			continue
		}
		if size < message.MinRecordSize || rel+size+trailerSize+blankSize > it.l.cfg.SegmentSize {
			return 0, nil, fmt.Errorf("commitlog: bad record size %d at offset %d", size, it.off)
		}
		frame, inMem, err := it.bytes(rel, size+trailerSize)
		if err != nil {
			return 0, nil, err
		}
		if !inMem { // read from the file: the disk may have changed it
			if err := CheckRecord(frame, it.off); err != nil {
				return 0, nil, fmt.Errorf("%w (%s at file offset %d)", err, it.seg.rf.Name(), rel)
			}
		}
		phys = it.off
		it.off += size + trailerSize
		return phys, frame, nil
	}
	return 0, nil, nil
}

// locate points the iterator at the segment holding its offset.
func (it *Iterator) locate() error {
	if it.seg != nil && it.off < it.seg.base+it.l.cfg.SegmentSize && it.off >= it.seg.base {
		return nil
	}
	it.release()
	if it.off < it.l.MinOffset() {
		return fmt.Errorf("%w: %d is below the minimum offset %d", ErrNotFound, it.off, it.l.MinOffset())
	}
	seg := segmentAt(it.l.segments(), it.off)
	if !seg.acquireFiles() {
		return fmt.Errorf("%w: segment %d was removed", ErrNotFound, seg.base)
	}
	it.seg = seg
	if m := seg.mem.Load(); m != nil && m.acquire() {
		it.m = m
	}
	return nil
}

// bytes returns [rel, rel+n) of the segment, from memory (inMem) while
// its chunks are in the window, else from the file.
func (it *Iterator) bytes(rel, n int64) (b []byte, inMem bool, err error) {
	if it.m != nil && rel >= it.seg.valid && it.holdChunks(rel, n) {
		return it.m.buf[rel : rel+n], true, nil
	}
	if rel < it.winAt || rel+n > it.winAt+int64(len(it.win)) {
		// Never read ahead past the written end: the window is reused for
		// later records, and the bytes there are not in the file yet.
		size := max(n, min(readAhead, it.l.cfg.SegmentSize-rel, it.l.written.Load()-it.seg.base-rel))
		it.win = grow(it.win, int(size))
		got, err := it.seg.rf.ReadAt(it.win, rel)
		if int64(got) < n {
			it.win = it.win[:0]
			return nil, false, fmt.Errorf("commitlog: read %s at %d: %w", it.seg.rf.Name(), rel, err)
		}
		it.win, it.winAt = it.win[:got], rel
	}
	return it.win[rel-it.winAt : rel-it.winAt+n], false, nil
}

// holdChunks makes the iterator hold the chunks of [rel, rel+n), taking
// the new ones before letting go of the old; false when one is dropped
// (then it holds none).
func (it *Iterator) holdChunks(rel, n int64) bool {
	c0, c1 := it.m.chunks(rel, n)
	if it.held && c0 >= it.c0 && c1 <= it.c1 {
		return true
	}
	ok := it.m.holdChunks(c0, c1)
	it.unholdChunks()
	if ok {
		it.c0, it.c1, it.held = c0, c1, true
	}
	return ok
}

func (it *Iterator) unholdChunks() {
	if it.held {
		it.m.unholdChunks(it.c0, it.c1)
		it.held = false
	}
}

func (it *Iterator) release() {
	if it.m != nil {
		it.unholdChunks()
		it.m.release()
		it.m = nil
	}
	if it.seg != nil {
		it.seg.releaseFiles()
	}
	it.seg = nil
	it.win = it.win[:0] // the window belongs to the segment just left
}

// Close releases the iterator's hold on memory.
func (it *Iterator) Close() { it.release() }

// Ref keeps bytes returned by View in memory while a caller uses them.
// Release it exactly once.
type Ref struct {
	m         *mirror
	rel, size int64
}

// Release drops the hold.
func (r Ref) Release() {
	if r.m != nil {
		r.m.unhold(r.rel, r.size)
	}
}

// View returns the record at phys without copying when it is still in
// memory (the window, keeper.go): the bytes stay valid and unchanged until
// ref.Release. ok is false when the record must be read with ReadRecord.
func (l *Log) View(phys int64, size int32) (b []byte, ref Ref, ok bool) {
	if phys < l.MinOffset() || size <= 0 || phys+int64(size) > l.written.Load() {
		return nil, Ref{}, false
	}
	seg := segmentAt(l.segments(), phys)
	rel := phys - seg.base
	m := seg.mem.Load()
	if m == nil || rel < seg.valid || rel+int64(size) > l.cfg.SegmentSize || !m.hold(rel, int64(size)) {
		return nil, Ref{}, false
	}
	return m.buf[rel : rel+int64(size) : rel+int64(size)], Ref{m, rel, int64(size)}, true
}

// InMemory reports whether phys lies in the in-memory window (reads there
// cost no I/O).
func (l *Log) InMemory(phys int64) bool {
	if phys < l.MinOffset() {
		return false
	}
	seg := segmentAt(l.segments(), phys)
	rel := phys - seg.base
	m := seg.mem.Load()
	return m != nil && rel >= seg.valid && rel < l.cfg.SegmentSize && m.resident(rel)
}
