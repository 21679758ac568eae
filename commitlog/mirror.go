package commitlog

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/vfs"
	"golang.org/x/sys/unix"
)

// mirror is an in-memory copy of a segment: appenders encode into it, the
// flush loop writes from it, and readers copy recent records out of it. Its
// bytes below the log tail never change once written. It is reference
// counted because readers may still copy from it when the log retires it.
type mirror struct {
	buf  []byte
	refs refCount     // 1 for the log while the segment is recent, +1 per reader
	pool *mirrorSpare // where the memory goes with the last reference; nil: freed
}

// acquire takes a reader reference, or returns false when the mirror is
// already released.
func (m *mirror) acquire() bool { return m.refs.acquire() }

// release drops a reference; the last one hands the memory to the pool.
// Releasing more than was taken is a bug that reuse would turn into
// corruption (the memory cleared under its remaining user): fail stop.
func (m *mirror) release() {
	switch n := m.refs.n.Add(-1); {
	case n == 0:
		m.pool.put(m.buf)
	case n < 0:
		panic("commitlog: mirror released more often than acquired")
	}
}

// mirrorSpare keeps the memory of the last retired mirror for the next
// segment (issue 14: tails across segment rolls). Fresh memory is costly
// to prepare: measured in a virtual machine, where the host backs each
// page on first touch, prefaulting 1 GiB took ~1.5 s of kernel time
// (clear_page was 28% of the broker's CPU while it ran). Clearing memory
// already backed is a plain memclr (~0.1 s per GiB), and the retired
// mirror's munmap goes away too. The log holds no more memory than before:
// the mirror retired after a roll is taken by the preparation that roll
// started, so past the first rolls no fresh memory is needed at all.
type mirrorSpare struct {
	mu        sync.Mutex
	buf       []byte
	closed    bool
	live      atomic.Int32 // mirrors made and not yet released
	keepBelow int32        // a spare is kept only while fewer mirrors live
}

// put keeps b as the spare, or frees it when there is one already, the
// log is closed, or enough mirrors live without it (a preparation that
// found no spare made a fresh one: keeping this one too would hold one
// segment more than the log uses). A nil pool frees.
func (p *mirrorSpare) put(b []byte) {
	if p != nil {
		live := p.live.Add(-1)
		p.mu.Lock()
		keep := !p.closed && p.buf == nil && live < p.keepBelow
		if keep {
			p.buf = b
		}
		p.mu.Unlock()
		if keep {
			return
		}
	}
	vfs.FreeAligned(b)
}

// take returns the spare when it has n bytes (nil otherwise; one of
// another size, from a log reopened with another segment size, is freed).
func (p *mirrorSpare) take(n int) []byte {
	p.mu.Lock()
	b := p.buf
	p.buf = nil
	p.mu.Unlock()
	if b != nil && len(b) != n {
		vfs.FreeAligned(b)
		return nil
	}
	return b
}

// close frees the spare; later puts free theirs.
func (p *mirrorSpare) close() {
	p.mu.Lock()
	b := p.buf
	p.buf, p.closed = nil, true
	p.mu.Unlock()
	vfs.FreeAligned(b)
}

// newMirror returns a zeroed mirror of size bytes: the pool's spare,
// cleared, or new memory, prefaulted when asked, both in steps paced by p.
// What is returned is always fully zeroed, even when p's stop closed.
func (l *Log) newMirror(size int64, p pacer) (*mirror, error) {
	buf := l.spare.take(int(size))
	switch {
	case buf != nil:
		zeroPaced(buf, p)
	default:
		var err error
		if buf, err = vfs.AlignedBuffer(int(size)); err != nil {
			return nil, err
		}
		if l.cfg.Prefault {
			prefault(buf, p)
		}
	}
	l.spare.live.Add(1)
	m := &mirror{buf: buf, pool: &l.spare}
	m.refs.n.Store(1)
	return m, nil
}

// zeroSlice is how much of a reused mirror is cleared between yields: a
// memclr cannot be preempted.
const zeroSlice = 256 << 10

// zeroPaced clears buf in paced steps, yielding between slices; once
// p's stop closed it finishes unpaced.
func zeroPaced(buf []byte, p pacer) {
	for off := 0; off < len(buf); off += prepareStep {
		step := buf[off:min(off+prepareStep, len(buf))]
		p.step(func() {
			for i := 0; i < len(step); i += zeroSlice {
				clear(step[i:min(i+zeroSlice, len(step))])
				runtime.Gosched()
			}
		})
	}
}

// prefault takes the page faults of fresh memory here, off the append path
// (touching 1 GiB of fresh pages costs ~260k faults, or 512 huge-page
// clears). Failure (old kernel) only costs speed; a Close stops it early.
func prefault(buf []byte, p pacer) {
	_ = unix.Madvise(buf, unix.MADV_HUGEPAGE)
	for off := 0; off < len(buf); off += prepareStep {
		if p.step(func() { _ = unix.Madvise(buf[off:min(off+prepareStep, len(buf))], 23 /* MADV_POPULATE_WRITE */) }) {
			return
		}
	}
}
