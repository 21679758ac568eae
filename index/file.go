package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"path"

	"github.com/mqd/mqd/internal/vfs"
)

// Sizes of the file regions (Java's IndexFile).
const (
	HeaderSize = 40 // file header
	SlotSize   = 4  // one hash slot
	EntrySize  = 20 // one index entry
)

var be = binary.BigEndian

// layout is the geometry every file of a Service shares.
type layout struct {
	slots    int32 // maxHashSlotNum
	maxIndex int32 // maxIndexNum
}

func (l layout) size() int64 {
	return HeaderSize + int64(l.slots)*SlotSize + int64(l.maxIndex)*EntrySize
}

func (l layout) slotPos(hash int32) int { return HeaderSize + int(hash%l.slots)*SlotSize }

func (l layout) entryPos(n int32) int {
	return HeaderSize + int(l.slots)*SlotSize + int(n)*EntrySize
}

// header is the 40-byte file header, cached in memory and written through
// to the mapping on every change.
type header struct {
	beginTs, endTs   int64
	beginPhy, endPhy int64
	slotCount        int32
	count            int32 // indexCount: next entry number; starts at 1
}

func (h *header) encode(b []byte) {
	be.PutUint64(b[0:], uint64(h.beginTs))
	be.PutUint64(b[8:], uint64(h.endTs))
	be.PutUint64(b[16:], uint64(h.beginPhy))
	be.PutUint64(b[24:], uint64(h.endPhy))
	be.PutUint32(b[32:], uint32(h.slotCount))
	be.PutUint32(b[36:], uint32(h.count))
}

func decodeHeader(b []byte) header {
	return header{
		beginTs:   int64(be.Uint64(b[0:])),
		endTs:     int64(be.Uint64(b[8:])),
		beginPhy:  int64(be.Uint64(b[16:])),
		endPhy:    int64(be.Uint64(b[24:])),
		slotCount: int32(be.Uint32(b[32:])),
		count:     int32(be.Uint32(b[36:])),
	}
}

// file is one mapped index file. Its bytes and header are guarded by
// Service.mu; dirty says it changed since its last msync.
type file struct {
	name  string // yyyyMMddHHmmssSSS
	path  string
	lay   layout
	f     vfs.File
	m     vfs.Mapping
	b     []byte
	h     header
	dirty bool
}

// createFile creates, sizes and maps a new file. Its begin and end values
// start from prev's end values (nil for the first file).
func createFile(fsys vfs.FS, dir, name string, lay layout, prev *header) (*file, error) {
	p := path.Join(dir, name)
	f, err := fsys.Open(p, vfs.Create)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(lay.size()); err != nil {
		_ = f.Close()
		return nil, err
	}
	// Reserve the blocks now: a store through the mapping into a hole on a
	// full disk raises SIGBUS, which would end the process; a full disk
	// must fail here, as an error the engine handles.
	if err := vfs.Fallocate(fsys, f, lay.size()); err != nil {
		_ = f.Close()
		_ = fsys.Remove(p)
		return nil, err
	}
	x, err := mapFile(fsys, f, name, p, lay)
	if err != nil {
		return nil, err
	}
	x.h = header{count: 1}
	if prev != nil {
		x.h.beginTs, x.h.endTs = prev.endTs, prev.endTs
		x.h.beginPhy, x.h.endPhy = prev.endPhy, prev.endPhy
	}
	x.h.encode(x.b)
	x.dirty = true
	return x, nil
}

// openFile maps an existing file and validates its size and header.
func openFile(fsys vfs.FS, dir, name string, lay layout) (*file, error) {
	p := path.Join(dir, name)
	st, err := fsys.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.Size() != lay.size() {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d (MaxHashSlotNum %d, MaxIndexNum %d)",
			ErrCorrupt, p, st.Size(), lay.size(), lay.slots, lay.maxIndex)
	}
	f, err := fsys.Open(p, 0)
	if err != nil {
		return nil, err
	}
	x, err := mapFile(fsys, f, name, p, lay)
	if err != nil {
		return nil, err
	}
	x.h = decodeHeader(x.b)
	if x.h.count == 0 { // header never reached the disk
		x.h.count = 1
	}
	if x.h.count < 1 || x.h.count > lay.maxIndex {
		_ = x.close()
		return nil, fmt.Errorf("%w: %s: indexCount %d outside [1, %d]", ErrCorrupt, p, x.h.count, lay.maxIndex)
	}
	return x, nil
}

func mapFile(fsys vfs.FS, f vfs.File, name, p string, lay layout) (*file, error) {
	m, err := fsys.Map(f, lay.size(), true)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	b := m.Bytes()
	if int64(len(b)) < lay.size() {
		_ = m.Close()
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s: mapping is %d bytes, want %d", ErrCorrupt, p, len(b), lay.size())
	}
	return &file{name: name, path: p, lay: lay, f: f, m: m, b: b}, nil
}

func (x *file) full() bool { return x.h.count >= x.lay.maxIndex }

func (x *file) getInt32(pos int) int32 { return int32(be.Uint32(x.b[pos:])) }

// put adds one key (Java's IndexFile.putKey). The caller checked !full().
func (x *file) put(hash int32, phy, ts int64) {
	sp := x.lay.slotPos(hash)
	prev := x.getInt32(sp)
	if prev <= 0 || prev >= x.h.count {
		prev = 0
	}
	if x.h.count <= 1 {
		x.h.beginPhy, x.h.beginTs = phy, ts
	}
	n := x.h.count
	p := x.lay.entryPos(n)
	be.PutUint32(x.b[p:], uint32(hash))
	be.PutUint64(x.b[p+4:], uint64(phy))
	be.PutUint32(x.b[p+12:], uint32(timeDiff(ts, x.h.beginTs)))
	be.PutUint32(x.b[p+16:], uint32(prev))
	be.PutUint32(x.b[sp:], uint32(n))
	if prev == 0 {
		x.h.slotCount++
	}
	x.h.count++
	x.h.endPhy, x.h.endTs = phy, ts
	x.h.encode(x.b)
	x.dirty = true
}

// timeDiff is (ts − begin) in whole seconds clamped to [0, MaxInt32]; 0
// when the file has no begin time.
func timeDiff(ts, begin int64) int32 {
	if begin <= 0 {
		return 0
	}
	d := (ts - begin) / 1000
	return int32(min(max(d, 0), math.MaxInt32))
}

// overlaps reports whether the file's time range meets [begin, end].
func (x *file) overlaps(begin, end int64) bool {
	return begin <= x.h.endTs && end >= x.h.beginTs
}

// collect walks the chain of hash's slot, newest entry first, appending the
// commit-log offsets of entries with the same hash and a time in
// [begin, end] until out holds maxNum offsets (Java's IndexService.queryOffset). Every number
// read from the file is bounds-checked and a chain must strictly descend,
// so a corrupt file ends the walk instead of panicking or looping.
func (x *file) collect(hash int32, maxNum int, begin, end int64, out []int64) []int64 {
	n := x.getInt32(x.lay.slotPos(hash))
	if n <= 0 || n >= x.h.count {
		return out
	}
	for len(out) < maxNum {
		p := x.lay.entryPos(n)
		diff := x.getInt32(p + 12)
		if diff < 0 {
			break
		}
		t := x.h.beginTs + int64(diff)*1000
		if x.getInt32(p) == hash && t >= begin && t <= end {
			out = append(out, int64(be.Uint64(x.b[p+4:])))
		}
		prev := x.getInt32(p + 16)
		if prev <= 0 || prev >= n || t < begin {
			break
		}
		n = prev
	}
	return out
}

// close unmaps and closes the file (no sync).
func (x *file) close() error {
	err := x.m.Close()
	if cerr := x.f.Close(); err == nil {
		err = cerr
	}
	return err
}
