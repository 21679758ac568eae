package commitlog

import (
	"encoding/binary"
	"fmt"

	"github.com/mqd/mqd/internal/message"
)

// ErrNotFound is returned for offsets outside the readable log.
var ErrNotFound = fmt.Errorf("commitlog: offset not in the log")

func (l *Log) segments() []*segment { return *l.view.Load() }

// ReadRecord copies the record at phys (size bytes, as recorded in a
// consume-queue entry) into dst (grown if needed) and returns it. Only
// offsets below Written are readable. Recent records come from memory,
// older ones from the file.
func (l *Log) ReadRecord(phys int64, size int32, dst []byte) ([]byte, error) {
	if phys < l.MinOffset() || phys+int64(size) > l.written.Load() || size <= 0 {
		return nil, fmt.Errorf("%w: [%d,+%d) outside [%d,%d)", ErrNotFound, phys, size, l.MinOffset(), l.written.Load())
	}
	seg := segmentAt(l.segments(), phys)
	rel := phys - seg.base
	if rel+int64(size) > l.cfg.SegmentSize {
		return nil, fmt.Errorf("%w: record crosses a segment end", ErrNotFound)
	}
	dst = grow(dst, int(size))
	if m := seg.mem.Load(); m != nil && rel >= seg.valid && m.acquire() {
		copy(dst, m.buf[rel:rel+int64(size)])
		m.release()
		return dst, nil
	}
	if _, err := seg.rf.ReadAt(dst, rel); err != nil {
		return nil, fmt.Errorf("commitlog: read %s at %d: %w", seg.rf.Name(), rel, err)
	}
	return dst, nil
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
	m   *mirror // held while iterating a mirrored segment
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
	for it.off < limit {
		if err := it.locate(); err != nil {
			return 0, nil, err
		}
		rel := it.off - it.seg.base
		hdr, err := it.bytes(rel, 8)
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
		rec, err := it.bytes(rel, size)
		if err != nil {
			return 0, nil, err
		}
		phys = it.off
		it.off += size + trailerSize
		return phys, rec, nil
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
	it.seg = segmentAt(it.l.segments(), it.off)
	if m := it.seg.mem.Load(); m != nil && m.acquire() {
		it.m = m
	}
	return nil
}

func (it *Iterator) bytes(rel, n int64) ([]byte, error) {
	if it.m != nil && rel >= it.seg.valid {
		return it.m.buf[rel : rel+n], nil
	}
	if rel < it.winAt || rel+n > it.winAt+int64(len(it.win)) {
		size := min(max(n, readAhead), it.l.cfg.SegmentSize-rel)
		it.win = grow(it.win, int(size))
		got, err := it.seg.rf.ReadAt(it.win, rel)
		if int64(got) < n {
			it.win = it.win[:0]
			return nil, fmt.Errorf("commitlog: read %s at %d: %w", it.seg.rf.Name(), rel, err)
		}
		it.win, it.winAt = it.win[:got], rel
	}
	return it.win[rel-it.winAt : rel-it.winAt+n], nil
}

func (it *Iterator) release() {
	if it.m != nil {
		it.m.release()
		it.m = nil
	}
	it.seg = nil
	it.win = it.win[:0] // the window belongs to the segment just left
}

// Close releases the iterator's hold on memory.
func (it *Iterator) Close() { it.release() }

// Ref keeps a segment's in-memory copy alive while a caller uses bytes
// returned by View. Release it exactly once.
type Ref struct{ m *mirror }

// Release drops the hold.
func (r Ref) Release() {
	if r.m != nil {
		r.m.release()
	}
}

// View returns the record at phys without copying when it is still in
// memory (recent segments): the bytes stay valid and unchanged until
// ref.Release. ok is false when the record must be read with ReadRecord.
func (l *Log) View(phys int64, size int32) (b []byte, ref Ref, ok bool) {
	if phys < l.MinOffset() || size <= 0 || phys+int64(size) > l.written.Load() {
		return nil, Ref{}, false
	}
	seg := segmentAt(l.segments(), phys)
	rel := phys - seg.base
	m := seg.mem.Load()
	if m == nil || rel < seg.valid || rel+int64(size) > l.cfg.SegmentSize || !m.acquire() {
		return nil, Ref{}, false
	}
	return m.buf[rel : rel+int64(size) : rel+int64(size)], Ref{m}, true
}

// InMemory reports whether phys lies in a segment whose copy is in memory
// (reads there cost no I/O).
func (l *Log) InMemory(phys int64) bool {
	if phys < l.MinOffset() {
		return false
	}
	seg := segmentAt(l.segments(), phys)
	return seg.mem.Load() != nil && phys-seg.base >= seg.valid
}
