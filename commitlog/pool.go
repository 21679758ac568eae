package commitlog

import (
	"sync"
	"unsafe"

	"github.com/mqd/mqd/internal/vfs"
	"golang.org/x/sys/unix"
)

// chunkPool keeps the pages of dropped mirror chunks for the chunks the
// mirror loop populates next (keeper.go). Pages handed back to the kernel
// are not cheap to fault in again here: this VM reports free guest pages
// to the host, which takes them back within seconds, so a later touch is a
// fresh host fault (measured: re-populating 1 GiB freed 3 s before took
// 0.54 s, 6 s before 1.36 s, against 0.09 s at once and 2.5 s fresh). So a
// dropped chunk's pages are moved, not freed: mremap moves page tables
// (huge pages stay huge; ~20-50 µs for 32 MiB) into one of the pool's
// slots, and back onto a chunk to populate. MREMAP_DONTUNMAP (Linux 5.7)
// leaves the source range mapped and empty, so neither a mirror's address
// range nor a slot is ever unmapped by a move. Where the kernel refuses,
// park fails and the caller frees the pages.
type chunkPool struct {
	mu     sync.Mutex
	size   int64    // bytes per chunk
	max    int      // slots at most: parked chunks beyond are freed
	empty  [][]byte // slots holding no pages
	parked [][]byte // slots holding a dropped chunk's pages
	slots  int      // slots mapped
	closed bool
	broken bool   // a move failed: the pool is no longer used
	moves  [2]int // chunks parked, chunks filled (for tests)
}

const mremapDontUnmap = 4 // MREMAP_DONTUNMAP, not in x/sys/unix

// move moves the pages of from onto to (same length; whatever to held is
// replaced), leaving from mapped and empty. A failed mremap may already
// have unmapped to (the kernel unmaps the target before its last checks):
// to is then mapped again, empty, so that no hole is ever left for another
// mapping to take.
func move(from, to []byte) bool {
	_, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(unsafe.Pointer(&from[0])), uintptr(len(from)), uintptr(len(to)),
		unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED|mremapDontUnmap, uintptr(unsafe.Pointer(&to[0])), 0)
	if errno == 0 {
		return true
	}
	remap(to)
	return false
}

// remap maps b's range again as fresh private memory, in place.
func remap(b []byte) {
	_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED, ^uintptr(0), 0)
	if errno != 0 {
		// The range may be a hole that another mapping could take: writes
		// there would corrupt it. Stop rather than risk that.
		panic("commitlog: cannot map a mirror range again after a failed move: " + errno.Error())
	}
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
}

// park moves the pages of b (a whole chunk of a mirror, nobody using it)
// into the pool. It reports false when it did not (pool full or closed, or
// the kernel refused): the caller frees them.
func (p *chunkPool) park(b []byte) bool {
	if p == nil || int64(len(b)) != p.size {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.broken || len(p.parked) >= p.max {
		return false
	}
	if len(p.empty) == 0 {
		if p.slots >= p.max {
			return false
		}
		slot, err := vfs.AlignedBuffer(int(p.size)) // address space only until a move fills it
		if err != nil {
			return false
		}
		p.slots++
		p.empty = append(p.empty, slot)
	}
	slot := p.empty[len(p.empty)-1]
	if !move(b, slot) {
		p.broken = true
		return false
	}
	p.empty = p.empty[:len(p.empty)-1]
	p.parked = append(p.parked, slot)
	p.moves[0]++
	return true
}

// take returns a parked chunk's slot, its pages zeroed (outside any
// lock: ~2 ms for 32 MiB), or nil when none is parked. The caller moves
// it with fill or hands it back with putBack.
func (p *chunkPool) take() []byte {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	n := len(p.parked)
	if n == 0 || p.broken {
		p.mu.Unlock()
		return nil
	}
	slot := p.parked[n-1]
	p.parked = p.parked[:n-1]
	p.mu.Unlock()
	clear(slot)
	return slot
}

// putBack parks a slot take returned, unused.
func (p *chunkPool) putBack(slot []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		vfs.FreeAligned(slot)
		return
	}
	p.parked = append(p.parked, slot)
}

// fill moves the pages of a slot take returned onto b (a whole chunk of a
// mirror that nobody has written: whatever is mapped there is replaced)
// and reports whether it did.
func (p *chunkPool) fill(slot, b []byte) bool {
	ok := int64(len(b)) == p.size && move(slot, b)
	if !ok {
		_ = unix.Madvise(slot, unix.MADV_DONTNEED)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok {
		p.broken = true
	} else {
		p.moves[1]++
	}
	if p.closed {
		vfs.FreeAligned(slot)
	} else {
		p.empty = append(p.empty, slot)
	}
	return ok
}

// close frees every slot not in a move; later parks fail.
func (p *chunkPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.parked {
		vfs.FreeAligned(s)
	}
	for _, s := range p.empty {
		vfs.FreeAligned(s)
	}
	p.parked, p.empty, p.closed = nil, nil, true
}

// len is the number of parked chunks.
func (p *chunkPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}
