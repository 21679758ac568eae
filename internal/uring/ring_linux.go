//go:build linux

package uring

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sqRing points into the mmapped submission ring.
type sqRing struct {
	head, tail, flags *uint32 // kernel-owned head; our tail; kernel flags
	mask, entries     uint32
	array             []uint32 // index array: array[i] = i, set once
}

// cqRing points into the mmapped completion ring.
type cqRing struct {
	head, tail    *uint32 // our head; kernel-owned tail
	mask, entries uint32
	cqes          []rawCQE
}

// Ring is an io_uring instance: the submission and completion rings mapped
// into this process, the table of operations in flight and their buffers.
// A Ring is owned by one goroutine; see the package documentation.
type Ring struct {
	fd       int
	features uint32
	sqMem    []byte // SQ ring; also the CQ ring with IORING_FEAT_SINGLE_MMAP
	cqMem    []byte // CQ ring when mapped separately, else nil
	sqeMem   []byte // the SQE array
	sq       sqRing
	cq       cqRing
	handles  []SQE  // one per SQE slot, pointing at its rawSQE
	sqeTail  uint32 // next SQE slot to hand out; published by flush
	ops      opTable
	backlog  cqBacklog
	probe    *probe
	closed   bool
}

// New sets up a ring with at least entries submission entries (the kernel
// rounds up to a power of two and clamps large values) and maps it.
// liburing: io_uring_queue_init
func New(entries uint32) (*Ring, error) {
	if entries == 0 {
		return nil, fmt.Errorf("uring: New(0): %w", unix.EINVAL)
	}
	p := params{flags: setupClamp | setupSubmitAll}
	fd, err := sysSetup(entries, &p)
	if err == unix.EINVAL { // IORING_SETUP_SUBMIT_ALL needs Linux 5.18
		p = params{flags: setupClamp}
		fd, err = sysSetup(entries, &p)
	}
	if err != nil {
		return nil, fmt.Errorf("uring: io_uring_setup(%d): %w", entries, err)
	}
	r := &Ring{fd: fd, features: p.features}
	if err := r.mapRings(&p); err != nil {
		r.unmap()
		unix.Close(fd)
		return nil, err
	}
	return r, nil
}

func mmapRing(fd int, off int64, size int) ([]byte, error) {
	b, err := unix.Mmap(fd, off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("uring: mmap ring at %#x: %w", off, err)
	}
	return b, nil
}

// mapRings maps the SQ ring, the CQ ring (the same mapping when the kernel
// offers IORING_FEAT_SINGLE_MMAP) and the SQE array.
func (r *Ring) mapRings(p *params) error {
	sqSize := int(p.sqOff.array) + int(p.sqEntries)*4
	cqSize := int(p.cqOff.cqes) + int(p.cqEntries)*int(unsafe.Sizeof(rawCQE{}))
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	if r.sqMem, err = mmapRing(r.fd, offSQRing, sqSize); err != nil {
		return err
	}
	cqMem := r.sqMem
	if !single {
		if r.cqMem, err = mmapRing(r.fd, offCQRing, cqSize); err != nil {
			return err
		}
		cqMem = r.cqMem
	}
	if r.sqeMem, err = mmapRing(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(rawSQE{}))); err != nil {
		return err
	}
	r.initSQ(p)
	r.initCQ(p, cqMem)
	return nil
}

func u32At(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

func (r *Ring) initSQ(p *params) {
	m := r.sqMem
	r.sq = sqRing{
		head:    u32At(m, p.sqOff.head),
		tail:    u32At(m, p.sqOff.tail),
		flags:   u32At(m, p.sqOff.flags),
		mask:    *u32At(m, p.sqOff.ringMask),
		entries: *u32At(m, p.sqOff.ringEntries),
		array:   unsafe.Slice(u32At(m, p.sqOff.array), p.sqEntries),
	}
	for i := range r.sq.array {
		r.sq.array[i] = uint32(i)
	}
	sqes := unsafe.Slice((*rawSQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.handles = make([]SQE, p.sqEntries)
	for i := range r.handles {
		r.handles[i] = SQE{raw: &sqes[i], ring: r}
	}
	r.sqeTail = atomic.LoadUint32(r.sq.tail)
	r.ops.init(int(p.sqEntries + p.cqEntries))
}

func (r *Ring) initCQ(p *params, m []byte) {
	r.cq = cqRing{
		head:    u32At(m, p.cqOff.head),
		tail:    u32At(m, p.cqOff.tail),
		mask:    *u32At(m, p.cqOff.ringMask),
		entries: *u32At(m, p.cqOff.ringEntries),
		cqes:    unsafe.Slice((*rawCQE)(unsafe.Pointer(&m[p.cqOff.cqes])), p.cqEntries),
	}
}

func (r *Ring) unmap() {
	for _, b := range [][]byte{r.sqeMem, r.cqMem, r.sqMem} {
		if b != nil {
			_ = unix.Munmap(b)
		}
	}
	r.sqeMem, r.cqMem, r.sqMem = nil, nil, nil
}

// SQEntries returns the size of the submission ring.
func (r *Ring) SQEntries() uint32 { return r.sq.entries }

// CQEntries returns the size of the completion ring.
func (r *Ring) CQEntries() uint32 { return r.cq.entries }

// InFlight returns how many operations were handed out by GetSQE and not yet
// reaped.
func (r *Ring) InFlight() int { return r.ops.inflight }

// Probe returns nil if the kernel supports every op, else an error naming
// the unsupported ones that wraps ErrUnsupported. The probe is registered
// once per ring. liburing: io_uring_get_probe_ring + io_uring_opcode_supported
func (r *Ring) Probe(ops ...Op) error {
	if r.closed {
		return ErrClosed
	}
	if r.probe == nil {
		p := new(probe)
		if err := sysRegisterProbe(r.fd, p); err != nil {
			return fmt.Errorf("uring: IORING_REGISTER_PROBE: %w", err)
		}
		r.probe = p
	}
	var missing []string
	for _, op := range ops {
		if !r.supported(op) {
			missing = append(missing, op.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("uring: %s not supported: %w", strings.Join(missing, ", "), ErrUnsupported)
	}
	return nil
}

func (r *Ring) supported(op Op) bool {
	p := r.probe
	return op <= Op(p.lastOp) && int(op) < int(p.opsLen) && p.ops[op].flags&opSupported != 0
}

// GetSQE returns the next free submission entry, zeroed (a zeroed entry is
// a NOP), or nil when the submission ring is full: Submit, then retry.
// liburing: io_uring_get_sqe
func (r *Ring) GetSQE() *SQE {
	if r.closed {
		return nil
	}
	if r.sqeTail-atomic.LoadUint32(r.sq.head) >= r.sq.entries {
		return nil
	}
	s := &r.handles[r.sqeTail&r.sq.mask]
	r.sqeTail++
	s.id = r.ops.alloc()
	*s.raw = rawSQE{userData: uint64(s.id)}
	return s
}

// SQSpaceLeft returns how many entries GetSQE can still hand out before a
// Submit. A linked chain must fit in one submission: the kernel ends a link
// at the end of each submission. liburing: io_uring_sq_space_left
func (r *Ring) SQSpaceLeft() uint32 {
	if r.closed {
		return 0
	}
	return r.sq.entries - (r.sqeTail - atomic.LoadUint32(r.sq.head))
}

// flush publishes the entries handed out since the last flush (release
// store of the tail) and returns how many the kernel has not consumed.
// liburing: __io_uring_flush_sq
func (r *Ring) flush() uint32 {
	atomic.StoreUint32(r.sq.tail, r.sqeTail)
	return r.sqeTail - atomic.LoadUint32(r.sq.head)
}

// Submit hands every prepared entry to the kernel without waiting and
// returns how many the kernel consumed. liburing: io_uring_submit
func (r *Ring) Submit() (int, error) { return r.SubmitAndWait(0) }

// SubmitAndWait submits every prepared entry and waits until at least want
// completions are ready (fewer if fewer operations are in flight), in one
// io_uring_enter when it can. EINTR is retried; EAGAIN and EBUSY are handled
// by moving completions out of the kernel ring (they are still delivered by
// PeekCQE, WaitCQE and Reap) or waiting for one. It returns how many
// entries the kernel consumed. liburing: io_uring_submit_and_wait
func (r *Ring) SubmitAndWait(want uint32) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	want = min(want, uint32(r.ops.inflight))
	total := 0
	for {
		toSubmit := r.flush()
		ready := r.CQReady()
		if toSubmit == 0 && ready >= want {
			return total, nil
		}
		var flags, minComplete uint32
		if ready < want {
			if r.kernelReady() == r.cq.entries {
				r.stash() // the kernel cannot post more until we make room
				continue
			}
			flags, minComplete = enterGetEvents, want-uint32(r.backlog.len())
		}
		n, err := sysEnter(r.fd, toSubmit, minComplete, flags)
		total += n
		if err == nil && n == 0 && toSubmit > 0 {
			err = unix.EBUSY // no progress: treat as "reap first"
		}
		if err := r.enterFailed(err); err != nil {
			return total, err
		}
	}
}

// enterFailed decides what an io_uring_enter error means for the submit
// loop: nil to go round again, or the error to return.
func (r *Ring) enterFailed(err error) error {
	switch err {
	case nil, unix.EINTR:
		return nil
	case unix.EAGAIN, unix.EBUSY:
		return r.relieve(err)
	}
	return fmt.Errorf("uring: io_uring_enter: %w", err)
}

// relieve makes room after EAGAIN/EBUSY: it moves ready completions into the
// backlog or, when there are none, waits for one of the submitted
// operations to complete.
func (r *Ring) relieve(cause error) error {
	if r.stash() > 0 {
		return nil
	}
	unsubmitted := int(r.sqeTail - atomic.LoadUint32(r.sq.head))
	if r.ops.inflight-unsubmitted-r.backlog.len() <= 0 {
		return fmt.Errorf("uring: io_uring_enter: %w", cause)
	}
	_, err := sysEnter(r.fd, 0, 1, enterGetEvents)
	switch err {
	case nil, unix.EINTR, unix.EAGAIN, unix.EBUSY:
		return nil
	}
	return fmt.Errorf("uring: io_uring_enter: %w", err)
}

// kernelReady is the number of completions in the kernel ring.
func (r *Ring) kernelReady() uint32 {
	return atomic.LoadUint32(r.cq.tail) - atomic.LoadUint32(r.cq.head)
}

// CQReady returns how many completions can be taken without waiting.
// liburing: io_uring_cq_ready
func (r *Ring) CQReady() uint32 {
	if r.closed {
		return 0
	}
	return uint32(r.backlog.len()) + r.kernelReady()
}

// peekKernel takes the next completion out of the kernel ring (acquire load
// of the kernel's tail, release store of our head). When the ring is empty
// but the kernel holds overflowed completions, it asks for them first.
func (r *Ring) peekKernel() (rawCQE, bool) {
	head := atomic.LoadUint32(r.cq.head)
	if head == atomic.LoadUint32(r.cq.tail) {
		if atomic.LoadUint32(r.sq.flags)&sqCQOverflow == 0 {
			return rawCQE{}, false
		}
		_, _ = sysEnter(r.fd, 0, 0, enterGetEvents) // flush overflow
		if head == atomic.LoadUint32(r.cq.tail) {
			return rawCQE{}, false
		}
	}
	c := r.cq.cqes[head&r.cq.mask]
	atomic.StoreUint32(r.cq.head, head+1)
	return c, true
}

// stash moves every completion out of the kernel ring into the backlog.
func (r *Ring) stash() int {
	n := 0
	for {
		c, ok := r.peekKernel()
		if !ok {
			return n
		}
		r.backlog.push(c)
		n++
	}
}

// PeekCQE returns the next ready completion without blocking, and marks it
// seen: its ring slot goes back to the kernel and the operation's buffers
// are released, so there is no separate CQESeen.
// liburing: io_uring_peek_cqe + io_uring_cqe_seen
func (r *Ring) PeekCQE() (CQE, bool) {
	if r.closed {
		return CQE{}, false
	}
	c, ok := r.backlog.pop()
	if !ok {
		if c, ok = r.peekKernel(); !ok {
			return CQE{}, false
		}
	}
	return r.complete(c), true
}

// WaitCQE returns the next completion, submitting prepared entries and
// waiting if none is ready; like PeekCQE it marks the completion seen. It
// returns ErrNothingInFlight rather than block when nothing can complete.
// liburing: io_uring_wait_cqe + io_uring_cqe_seen
func (r *Ring) WaitCQE() (CQE, error) {
	for {
		if c, ok := r.PeekCQE(); ok {
			return c, nil
		}
		if r.closed {
			return CQE{}, ErrClosed
		}
		if r.ops.inflight == 0 {
			return CQE{}, ErrNothingInFlight
		}
		if _, err := r.SubmitAndWait(1); err != nil {
			return CQE{}, err
		}
	}
}

// Reap calls fn for every ready completion, in order, marking each seen, and
// returns how many it handled. It does not block.
// liburing: io_uring_for_each_cqe + io_uring_cq_advance
func (r *Ring) Reap(fn func(userData uint64, res int32, flags uint32)) int {
	n := 0
	for {
		c, ok := r.PeekCQE()
		if !ok {
			return n
		}
		fn(c.UserData, c.Res, c.Flags)
		n++
	}
}

// complete translates a kernel completion: its user_data is our operation
// index; the caller's user data comes from the table, whose buffers are
// released unless the kernel says more completions follow.
func (r *Ring) complete(c rawCQE) CQE {
	id := uint32(c.userData)
	var ud uint64
	if c.flags&IORING_CQE_F_MORE != 0 {
		ud = r.ops.slots[id].userData
	} else {
		ud = r.ops.release(id)
	}
	return CQE{UserData: ud, Res: c.res, Flags: c.flags}
}

// pinned keeps the buffers of rings whose Close could not drain them: the
// kernel may still use that memory, so it must never be freed.
var pinned struct {
	sync.Mutex
	tables []opTable
}

// Close waits for every operation in flight (submitting prepared entries
// first), discards their completions, unmaps the rings and closes the ring
// fd. Calling Close again is a no-op. liburing: io_uring_queue_exit
func (r *Ring) Close() error {
	if r.closed {
		return nil
	}
	var err error
	for r.ops.inflight > 0 && err == nil {
		if _, err = r.SubmitAndWait(uint32(r.ops.inflight)); err == nil {
			r.Reap(func(uint64, int32, uint32) {})
		}
	}
	if err != nil {
		pinned.Lock()
		pinned.tables = append(pinned.tables, r.ops)
		pinned.Unlock()
	}
	r.closed = true
	r.unmap()
	if cerr := unix.Close(r.fd); err == nil && cerr != nil {
		err = fmt.Errorf("uring: close ring: %w", cerr)
	}
	r.handles, r.ops, r.probe = nil, opTable{}, nil
	return err
}
