//go:build !linux

package uring

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Ring is unavailable outside Linux; New always fails.
type Ring struct{}

// SQE is unavailable outside Linux.
type SQE struct{}

// New returns an error wrapping syscall.ENOSYS and ErrUnsupported: io_uring
// exists only on Linux.
func New(entries uint32) (*Ring, error) {
	return nil, fmt.Errorf("uring: io_uring is Linux-only: %w (%w)", syscall.ENOSYS, ErrUnsupported)
}

// Probe fails: no ring.
func (r *Ring) Probe(ops ...Op) error { return ErrClosed }

// GetSQE returns nil: no ring.
func (r *Ring) GetSQE() *SQE { return nil }

// Submit fails: no ring.
func (r *Ring) Submit() (int, error) { return 0, ErrClosed }

// SubmitAndWait fails: no ring.
func (r *Ring) SubmitAndWait(want uint32) (int, error) { return 0, ErrClosed }

// SQSpaceLeft returns 0: no ring.
func (r *Ring) SQSpaceLeft() uint32 { return 0 }

// CQReady returns 0: no ring.
func (r *Ring) CQReady() uint32 { return 0 }

// PeekCQE returns nothing: no ring.
func (r *Ring) PeekCQE() (CQE, bool) { return CQE{}, false }

// WaitCQE fails: no ring.
func (r *Ring) WaitCQE() (CQE, error) { return CQE{}, ErrClosed }

// Reap returns 0: no ring.
func (r *Ring) Reap(fn func(userData uint64, res int32, flags uint32)) int { return 0 }

// SQEntries returns 0: no ring.
func (r *Ring) SQEntries() uint32 { return 0 }

// CQEntries returns 0: no ring.
func (r *Ring) CQEntries() uint32 { return 0 }

// InFlight returns 0: no ring.
func (r *Ring) InFlight() int { return 0 }

// Close is a no-op.
func (r *Ring) Close() error { return nil }

// PrepNop does nothing.
func (s *SQE) PrepNop() {}

// PrepWrite does nothing.
func (s *SQE) PrepWrite(fd int, buf []byte, off uint64) {}

// PrepRead does nothing.
func (s *SQE) PrepRead(fd int, buf []byte, off uint64) {}

// PrepWritev does nothing.
func (s *SQE) PrepWritev(fd int, iovs []unix.Iovec, off uint64) {}

// PrepReadv does nothing.
func (s *SQE) PrepReadv(fd int, iovs []unix.Iovec, off uint64) {}

// PrepFsync does nothing.
func (s *SQE) PrepFsync(fd int, datasync bool) {}

// SetUserData does nothing.
func (s *SQE) SetUserData(ud uint64) {}

// Link does nothing.
func (s *SQE) Link() {}

// SetFlags does nothing.
func (s *SQE) SetFlags(flags uint8) {}
