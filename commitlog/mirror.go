package commitlog

import (
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/vfs"
	"golang.org/x/sys/unix"
)

// mirror is an in-memory copy of a segment: appenders encode into it, the
// flush loop writes from it, and readers copy recent records out of it. Its
// bytes below the log tail never change once written.
//
// Only a window of the newest bytes of the log is kept in memory (issue 14:
// broker RSS, and the tail latency of preparing fresh memory). The mirror
// reserves the whole segment's address range, which costs no memory until
// touched, and is divided into chunks: the flush loop drops the chunks
// that fell behind the window, and a whole mirror once its segment is
// behind it; the mirror loop populates the chunks just ahead of the
// written end (keeper.go). A dropped chunk's pages are moved to a pool and
// from there onto the next chunk populated (pool.go): fresh memory costs
// ~2.5 s of kernel time per GiB to touch in this VM, where the host backs
// a page on its first touch, and pages handed back to the guest kernel
// soon go back to the host.
//
// Readers hold the chunks they read (hold): a dropped chunk refuses new
// holders, and its pages are released by whoever lets go of it last, so a
// reader never sees a page vanish under it. The tail moves only forward
// in a live log (truncation works on a closed log, repair.go), so the
// appenders and the flush loop only ever touch chunks at or above the
// written end, which are never dropped.
type mirror struct {
	buf   []byte
	chunk int64          // bytes per chunk; the last may be shorter
	state []atomic.Int32 // per chunk: the readers holding it, | chunkGone once dropped
	// refs counts the holders of the mapping: 1 for the log while the
	// segment is in the window, +1 per reader. The last one unmaps it.
	refs refCount
	// populated is how far the pages were populated ahead (written by
	// newMirror, then only by the mirror loop).
	populated atomic.Int64
	// parkFrom is the first chunk boundary at or above newMirror's from:
	// the chunks below it were never populated whole, so never parked.
	parkFrom int64
	retired  atomic.Bool // the log let go of the mirror: fill no more chunks
	// ready is the end of the bytes writers may touch: a pool chunk is
	// moved only onto a chunk at or above it (a move replaces what is
	// mapped there). Writers claim past it under mu; moves happen under
	// mu.
	ready atomic.Int64
	mu    sync.Mutex
	pool  *chunkPool // where dropped chunks' pages go; nil: freed
}

// chunkGone marks a dropped chunk in mirror.state.
const chunkGone = 1 << 30

// newMirror maps a mirror of size bytes in chunks of chunk bytes, whose
// bytes below from are never written (reads there go to the file), and
// populates it from from up to to (paced by p) when populate.
func newMirror(size, chunk, from, to int64, populate bool, pool *chunkPool, p pacer) (*mirror, error) {
	buf, err := vfs.AlignedBuffer(int(size))
	if err != nil {
		return nil, err
	}
	m := &mirror{buf: buf, chunk: chunk, state: make([]atomic.Int32, (size+chunk-1)/chunk), pool: pool}
	m.refs.n.Store(1)
	m.dropBelow(from) // untouched: nothing to free or park
	m.ready.Store(from)
	m.populated.Store(from)
	m.parkFrom = (from + chunk - 1) / chunk * chunk
	if populate {
		_ = unix.Madvise(buf, unix.MADV_HUGEPAGE) // failure (old kernel) only costs speed
		m.populate(to, p)
	}
	return m, nil
}

// claim lets a writer touch the bytes below to (rounded up to a chunk):
// no pool chunk is moved there after it returns. Cheap unless a chunk
// boundary is crossed.
func (m *mirror) claim(to int64) {
	if to <= m.ready.Load() {
		return
	}
	m.mu.Lock()
	if to > m.ready.Load() {
		m.ready.Store(min((to+m.chunk-1)/m.chunk*m.chunk, int64(len(m.buf))))
	}
	m.mu.Unlock()
}

// acquire takes a reference on the mapping, or returns false when the
// mirror is already released.
func (m *mirror) acquire() bool { return m.refs.acquire() }

// release drops a reference on the mapping; the last one unmaps it.
// Releasing more than was taken is a bug that would unmap memory still in
// use: fail stop.
func (m *mirror) release() {
	switch n := m.refs.n.Add(-1); {
	case n == 0:
		vfs.FreeAligned(m.buf)
	case n < 0:
		panic("commitlog: mirror released more often than acquired")
	}
}

// chunks returns the first and last chunk holding bytes [rel, rel+n).
func (m *mirror) chunks(rel, n int64) (int, int) {
	return int(rel / m.chunk), int((rel + n - 1) / m.chunk)
}

// hold pins the bytes [rel, rel+n), n > 0: the mapping and its chunks. It
// returns false, holding nothing, when a chunk was dropped or the mirror
// released: the bytes must be read from the file.
func (m *mirror) hold(rel, n int64) bool {
	if !m.acquire() {
		return false
	}
	c0, c1 := m.chunks(rel, n)
	if m.holdChunks(c0, c1) {
		return true
	}
	m.release()
	return false
}

// unhold lets go of what hold(rel, n) pinned.
func (m *mirror) unhold(rel, n int64) {
	c0, c1 := m.chunks(rel, n)
	m.unholdChunks(c0, c1)
	m.release()
}

// holdChunks pins chunks c0..c1 (the caller holds the mapping), or none
// when one of them is dropped.
func (m *mirror) holdChunks(c0, c1 int) bool {
	for c := c0; c <= c1; c++ {
		for {
			v := m.state[c].Load()
			if v&chunkGone != 0 {
				m.unholdChunks(c0, c-1)
				return false
			}
			if m.state[c].CompareAndSwap(v, v+1) {
				break
			}
		}
	}
	return true
}

// unholdChunks unpins chunks c0..c1; the last holder of a dropped chunk
// releases its pages.
func (m *mirror) unholdChunks(c0, c1 int) {
	for c := c0; c <= c1; c++ {
		switch v := m.state[c].Add(-1); {
		case v == chunkGone:
			m.freeChunk(c)
		case v < 0 || v == chunkGone-1: // below zero, without or with the gone bit
			panic("commitlog: mirror chunk released more often than held")
		}
	}
}

// resident reports whether rel lies in a chunk not dropped (state is Go
// memory: no hold is needed to read it).
func (m *mirror) resident(rel int64) bool { return m.state[rel/m.chunk].Load()&chunkGone == 0 }

// dropBelow drops the chunks that end at or below rel: new readers go to
// the file, and each chunk's pages are released now or by its last
// holder.
func (m *mirror) dropBelow(rel int64) {
	for c := 0; c < len(m.state) && int64(c+1)*m.chunk <= rel; c++ {
		if old := m.state[c].Or(chunkGone); old == 0 {
			m.freeChunk(c)
		}
	}
}

// freeChunk parks chunk c's pages in the pool when it was populated
// whole, or hands them back to the kernel; its range reads as zeros if
// touched again. The caller holds the mapping.
func (m *mirror) freeChunk(c int) {
	from := int64(c) * m.chunk
	b := m.buf[from:min(from+m.chunk, int64(len(m.buf)))]
	if from >= m.parkFrom && from+m.chunk <= m.populated.Load() && m.pool.park(b) {
		return
	}
	_ = unix.Madvise(b, unix.MADV_DONTNEED)
}

// populate makes the bytes [populated, to) resident ahead of the writers:
// whole chunks from the pool when it has them (cheap, see pool.go), else
// by taking the page faults here, off the append path, in steps paced by
// p (touching fresh memory costs ~260k faults per GiB, or 512 huge-page
// clears, and in this VM a host fault each). A closed stop ends it early.
func (m *mirror) populate(to int64, p pacer) {
	to = min(to, int64(len(m.buf)))
	for c := m.populated.Load() / m.chunk; int(c) < len(m.state) && !m.resident(c*m.chunk); c++ {
		m.populated.Store((c + 1) * m.chunk) // dropped behind a lagging loop: never fault it back in
	}
	for at := m.populated.Load(); at < to; at = m.populated.Load() {
		if at%m.chunk == 0 && m.fillChunk(at) {
			m.populated.Store(at + m.chunk)
			continue
		}
		end := min(at+prepareStep, to, (at/m.chunk+1)*m.chunk)
		m.claim(end) // populating only fills holes: safe beside writers
		step := m.buf[at:end]
		stopped := p.step(func() { _ = unix.Madvise(step, 23 /* MADV_POPULATE_WRITE */) })
		m.populated.Store(end)
		if stopped {
			return
		}
	}
}

// fillChunk moves a pool chunk onto the whole chunk at at, unless a writer
// claimed it first, the mirror left the window, or the pool is empty.
func (m *mirror) fillChunk(at int64) bool {
	if m.pool == nil || at+m.chunk > int64(len(m.buf)) || at < m.ready.Load() {
		return false
	}
	slot := m.pool.take() // zeroed before the lock writers may wait on
	if slot == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if at < m.ready.Load() || !m.resident(at) || m.retired.Load() {
		m.pool.putBack(slot)
		return false
	}
	if !m.pool.fill(slot, m.buf[at:at+m.chunk]) {
		return false
	}
	m.ready.Store(at + m.chunk)
	return true
}
