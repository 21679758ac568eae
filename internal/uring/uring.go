// Package uring is a small io_uring ring over golang.org/x/sys/unix: setup,
// the mmapped submission and completion rings, io_uring_enter and the opcode
// probe. It implements only what the storage engine needs (file reads,
// writes, vectored writes, fsync, linking) and no kernel-side polling.
//
// Ownership: None of a Ring's methods may be called concurrently; the vfs
// io_uring backend runs a ring only from the caller holding its leader's
// lock. The kernel shares the rings' memory with that caller only (the
// lock orders one leader after the next): ring heads and tails are read and
// written with sync/atomic (the kernel's tails are loaded with acquire, our
// tails and heads published with release semantics).
//
// Buffer lifetime: every buffer and iovec array given to a prep helper is
// referenced by the Ring from GetSQE until the operation's completion has
// been reaped (PeekCQE, WaitCQE, Reap), so the garbage collector cannot free
// memory the kernel still reads or writes. The Ring manages the kernel-side
// user_data itself (an index into that table); the value set with
// SetUserData is handed back with the completion.
//
// Names follow liburing where that is natural; each such function says so.
package uring

import (
	"errors"
	"strconv"
	"syscall"
)

// Op is an io_uring opcode (enum io_uring_op in the kernel uapi header).
type Op uint8

// Opcodes used by the storage engine (values from include/uapi/linux/io_uring.h).
const (
	OpNop           Op = 0  // IORING_OP_NOP
	OpReadv         Op = 1  // IORING_OP_READV
	OpWritev        Op = 2  // IORING_OP_WRITEV
	OpFsync         Op = 3  // IORING_OP_FSYNC
	OpSyncFileRange Op = 8  // IORING_OP_SYNC_FILE_RANGE
	OpFallocate     Op = 17 // IORING_OP_FALLOCATE
	OpRead          Op = 22 // IORING_OP_READ
	OpWrite         Op = 23 // IORING_OP_WRITE
)

var opNames = map[Op]string{
	OpNop: "NOP", OpReadv: "READV", OpWritev: "WRITEV", OpFsync: "FSYNC",
	OpSyncFileRange: "SYNC_FILE_RANGE", OpFallocate: "FALLOCATE",
	OpRead: "READ", OpWrite: "WRITE",
}

// String returns the kernel name of the opcode, e.g. "IORING_OP_WRITEV".
func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return "IORING_OP_" + s
	}
	return "IORING_OP_" + strconv.Itoa(int(o))
}

// SQE flags (sqe->flags), named as in the kernel header.
const (
	IOSQE_FIXED_FILE    uint8 = 1 << 0 // fd is an index into registered files
	IOSQE_IO_DRAIN      uint8 = 1 << 1 // start after all earlier SQEs complete
	IOSQE_IO_LINK       uint8 = 1 << 2 // next SQE starts after this one succeeds
	IOSQE_IO_HARDLINK   uint8 = 1 << 3 // like IO_LINK, but not broken by errors
	IOSQE_ASYNC         uint8 = 1 << 4 // always go async
	iosqeCQESkipSuccess uint8 = 1 << 6 // not supported: it would leak pins
)

// IORING_FSYNC_DATASYNC makes an FSYNC an fdatasync (sqe->fsync_flags).
const IORING_FSYNC_DATASYNC uint32 = 1 << 0

// IORING_CQE_F_MORE in CQE flags says more completions will follow for the
// same request (multishot); its pins stay until the last one.
const IORING_CQE_F_MORE uint32 = 1 << 1

// CQE is a completion copied out of the ring: the user data given to
// SQE.SetUserData, the result (negative errno on failure) and the flags.
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// Err returns the completion's error: nil when Res >= 0, else the
// syscall.Errno -Res.
func (c CQE) Err() error { return ResError(c.Res) }

// ResError converts a completion result to an error: nil for res >= 0,
// syscall.Errno(-res) otherwise, so errors.Is(err, syscall.EBADF) works.
func ResError(res int32) error {
	if res >= 0 {
		return nil
	}
	return syscall.Errno(-res)
}

// ErrUnsupported is wrapped by Probe when an opcode is not supported and by
// New on systems without io_uring (together with syscall.ENOSYS).
var ErrUnsupported = errors.ErrUnsupported

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("uring: ring closed")

// ErrNothingInFlight is returned by WaitCQE when no operation could ever
// complete (nothing submitted and not yet reaped), instead of blocking forever.
var ErrNothingInFlight = errors.New("uring: no operation in flight")
