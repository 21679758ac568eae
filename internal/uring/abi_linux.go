//go:build linux

package uring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI of io_uring (include/uapi/linux/io_uring.h). The structs below
// mirror the header's layout exactly; the array-index expressions under them
// fail to compile if a size drifts.

// rawSQE is struct io_uring_sqe (64 bytes).
type rawSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64 // off / addr2
	addr        uint64 // addr / splice_off_in
	len         uint32
	opFlags     uint32 // rw_flags / fsync_flags / ...
	userData    uint64
	bufIndex    uint16 // buf_index / buf_group
	personality uint16
	fileIndex   int32 // splice_fd_in / file_index
	addr3       uint64
	pad2        uint64
}

// rawCQE is struct io_uring_cqe without IORING_SETUP_CQE32 (16 bytes).
type rawCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// sqRingOffsets is struct io_sqring_offsets.
type sqRingOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// cqRingOffsets is struct io_cqring_offsets.
type cqRingOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// params is struct io_uring_params.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqRingOffsets
	cqOff                                                                  cqRingOffsets
}

// probeOp is struct io_uring_probe_op; probe is struct io_uring_probe with
// room for every opcode an 8-bit opcode can name.
type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

type probe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [256]probeOp
}

var (
	_ = [1]struct{}{}[unsafe.Sizeof(rawSQE{})-64]
	_ = [1]struct{}{}[unsafe.Sizeof(rawCQE{})-16]
	_ = [1]struct{}{}[unsafe.Sizeof(params{})-120]
	_ = [1]struct{}{}[unsafe.Sizeof(probe{})-(16+256*8)]
)

const (
	// mmap offsets
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	// io_uring_params.flags
	setupClamp     = 1 << 4 // IORING_SETUP_CLAMP
	setupSubmitAll = 1 << 7 // IORING_SETUP_SUBMIT_ALL

	// io_uring_params.features
	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	featNoDrop     = 1 << 1 // IORING_FEAT_NODROP

	// sq_ring->flags
	sqCQOverflow = 1 << 1 // IORING_SQ_CQ_OVERFLOW
	sqTaskrun    = 1 << 2 // IORING_SQ_TASKRUN

	// io_uring_enter flags
	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	// io_uring_register opcodes
	registerProbe = 8 // IORING_REGISTER_PROBE

	// io_uring_probe_op.flags
	opSupported = 1 << 0 // IO_URING_OP_SUPPORTED
)

// sysSetup is io_uring_setup(2).
func sysSetup(entries uint32, p *params) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// sysEnter is io_uring_enter(2) without a signal mask or extended argument.
// It is not a raw syscall: waiting blocks the thread, and the Go scheduler
// must know.
func sysEnter(fd int, toSubmit, minComplete, flags uint32) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit),
		uintptr(minComplete), uintptr(flags), 0, 0)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}

// sysRegisterProbe is io_uring_register(2) with IORING_REGISTER_PROBE. The
// kernel requires the probe to be zeroed.
func sysRegisterProbe(fd int, p *probe) error {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), registerProbe,
		uintptr(unsafe.Pointer(p)), uintptr(len(p.ops)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
