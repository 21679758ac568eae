//go:build linux

package uring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxRW is the most one read or write transfers (MAX_RW_COUNT); longer
// buffers are clamped and complete short.
const maxRW = 0x7ffff000

// SQE is a submission queue entry handed out by GetSQE: fill it with one
// Prep method, then optionally SetUserData, Link or SetFlags. It must not be
// touched after the Submit that hands it to the kernel.
type SQE struct {
	raw  *rawSQE
	ring *Ring
	id   uint32 // index in the ring's operation table
}

func (s *SQE) slot() *opSlot { return &s.ring.ops.slots[s.id] }

func (s *SQE) prep(op Op, fd int, addr uintptr, n int, off uint64) {
	s.raw.opcode = uint8(op)
	s.raw.fd = int32(fd)
	s.raw.addr = uint64(addr)
	s.raw.len = uint32(n)
	s.raw.off = off
}

func bufAddr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// PrepNop makes the entry a no-op. liburing: io_uring_prep_nop
func (s *SQE) PrepNop() { s.prep(OpNop, -1, 0, 0, 0) }

// PrepWrite writes buf at off of fd (pwrite). buf is kept alive until the
// completion is reaped. liburing: io_uring_prep_write
func (s *SQE) PrepWrite(fd int, buf []byte, off uint64) {
	s.prep(OpWrite, fd, bufAddr(buf), min(len(buf), maxRW), off)
	s.slot().buf = buf
}

// PrepRead reads into buf from off of fd (pread). buf is kept alive until
// the completion is reaped. liburing: io_uring_prep_read
func (s *SQE) PrepRead(fd int, buf []byte, off uint64) {
	s.prep(OpRead, fd, bufAddr(buf), min(len(buf), maxRW), off)
	s.slot().buf = buf
}

// PrepWritev writes the buffers of iovs back to back at off of fd
// (pwritev). The iovec array, and through it the buffers, is kept alive
// until the completion is reaped; at most 1024 (IOV_MAX) entries.
// liburing: io_uring_prep_writev
func (s *SQE) PrepWritev(fd int, iovs []unix.Iovec, off uint64) {
	s.prep(OpWritev, fd, uintptr(unsafe.Pointer(unsafe.SliceData(iovs))), len(iovs), off)
	s.slot().iovs = iovs
}

// PrepReadv reads into the buffers of iovs from off of fd (preadv), keeping
// them alive like PrepWritev. liburing: io_uring_prep_readv
func (s *SQE) PrepReadv(fd int, iovs []unix.Iovec, off uint64) {
	s.prep(OpReadv, fd, uintptr(unsafe.Pointer(unsafe.SliceData(iovs))), len(iovs), off)
	s.slot().iovs = iovs
}

// PrepFsync syncs fd: fdatasync when datasync (IORING_FSYNC_DATASYNC), else
// fsync. liburing: io_uring_prep_fsync
func (s *SQE) PrepFsync(fd int, datasync bool) {
	s.prep(OpFsync, fd, 0, 0, 0)
	if datasync {
		s.raw.opFlags = IORING_FSYNC_DATASYNC
	}
}

// SetUserData sets the value returned with this entry's completion.
// liburing: io_uring_sqe_set_data64
func (s *SQE) SetUserData(ud uint64) { s.slot().userData = ud }

// Link sets IOSQE_IO_LINK: the next entry starts only after this one
// completes successfully; if this one fails or is short, the next completes
// with -ECANCELED.
func (s *SQE) Link() { s.raw.flags |= IOSQE_IO_LINK }

// SetFlags ORs IOSQE_* flags into the entry. IOSQE_CQE_SKIP_SUCCESS is
// ignored: every operation must post a completion to release its buffers.
// liburing: io_uring_sqe_set_flags (which replaces rather than ORs)
func (s *SQE) SetFlags(flags uint8) { s.raw.flags |= flags &^ iosqeCQESkipSuccess }

// opSlot is one operation from GetSQE to its final completion: the caller's
// user data and the memory the kernel may touch.
type opSlot struct {
	userData uint64
	buf      []byte
	iovs     []unix.Iovec
}

// opTable holds the operations in flight; the kernel's user_data is the
// index. Freed indexes are reused, so the steady state allocates nothing.
type opTable struct {
	slots    []opSlot
	free     []uint32
	inflight int
}

func (t *opTable) init(capacity int) {
	t.slots = make([]opSlot, 0, capacity)
	t.free = make([]uint32, 0, capacity)
}

func (t *opTable) alloc() uint32 {
	t.inflight++
	if n := len(t.free); n > 0 {
		id := t.free[n-1]
		t.free = t.free[:n-1]
		return id
	}
	t.slots = append(t.slots, opSlot{})
	return uint32(len(t.slots) - 1)
}

// release frees an operation's slot (dropping its buffer references) and
// returns its user data.
func (t *opTable) release(id uint32) uint64 {
	s := &t.slots[id]
	ud := s.userData
	*s = opSlot{}
	t.free = append(t.free, id)
	t.inflight--
	return ud
}

// cqBacklog holds completions taken out of the kernel ring early (to relieve
// EBUSY/EAGAIN or a full ring) until they are delivered, in order.
type cqBacklog struct {
	cqes []rawCQE
	head int
}

func (b *cqBacklog) len() int { return len(b.cqes) - b.head }

func (b *cqBacklog) push(c rawCQE) { b.cqes = append(b.cqes, c) }

func (b *cqBacklog) pop() (rawCQE, bool) {
	if b.head == len(b.cqes) {
		return rawCQE{}, false
	}
	c := b.cqes[b.head]
	b.head++
	if b.head == len(b.cqes) {
		b.cqes, b.head = b.cqes[:0], 0
	}
	return c, true
}
