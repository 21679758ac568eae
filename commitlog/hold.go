package commitlog

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// The SYNC_FLUSH hold (flush.Sync.MinGap, GapFromRate): the loop measures
// how fast durable waiters arrive, and the policy holds a round after a
// sync while they arrive fast enough, a slice (flush.HoldSlice) at a time.
// A hold of up to maxKernelHold is slept in the kernel and the rate
// measured over it alone, so that a hold ends, at the policy's next
// answer, as soon as sends stop arriving at the rate: a closed loop of
// synchronous senders that have all sent again is not kept waiting for
// the rest of the gap (measured: 64 such senders fell from 70k to 44k
// sends a second when it was, BENCHMARKS.md session 17).

// rateWindow is the shortest window the loop measures the arrival rate
// over outside a hold: at 100k sends a second about 1,000 arrivals.
const rateWindow = 10 * time.Millisecond

// maxKernelHold is the longest hold slept in the kernel. Go's timers
// round a sleep under 1 ms up to about 1 ms when the process is otherwise
// idle, as it is while a closed loop of senders waits for a held round;
// nanosleep(2) is exact to the timer slack (50 µs). Longer holds wait on a
// timer, which Close interrupts.
const maxKernelHold = time.Millisecond

// arrivalRate measures how fast durable waiters arrive, from the count of
// waiters ever queued (flush.Queue.Arrivals): over windows of at least
// rateWindow, and over each hold alone.
type arrivalRate struct {
	winAt    time.Time // start of the window being measured
	winCount uint64    // the count at winAt
	win      float64   // the rate over the last whole window
	// The hold being slept (holdAt zero: none), and the rate over the
	// last one when the loop has just woken from it (afterHold).
	holdAt    time.Time
	holdCount uint64
	hold      float64
	afterHold bool
}

// note takes the count read at now, at the top of each loop. A window
// that spans a quiet spell measures the spell as a whole, so the first
// round after a spell longer than the gap is not held.
func (r *arrivalRate) note(count uint64, now time.Time) {
	r.afterHold = !r.holdAt.IsZero()
	if r.afterHold {
		if d := now.Sub(r.holdAt); d > 0 {
			r.hold = float64(count-r.holdCount) / d.Seconds()
		}
		r.holdAt = time.Time{}
	}
	if d := now.Sub(r.winAt); d >= rateWindow {
		r.win = float64(count-r.winCount) / d.Seconds()
		r.winAt, r.winCount = now, count
	}
}

// holdFrom starts measuring a hold that begins with the count read at now.
func (r *arrivalRate) holdFrom(count uint64, now time.Time) {
	r.holdAt, r.holdCount = now, count
}

// rate is flush.Pending.Rate: over the hold just slept, else over the last
// window.
func (r *arrivalRate) rate() float64 {
	if r.afterHold {
		return r.hold
	}
	return r.win
}

// holdInKernel sleeps d (a hold of at most maxKernelHold).
func holdInKernel(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for {
		var rem unix.Timespec
		err := unix.Nanosleep(&ts, &rem)
		if !errors.Is(err, unix.EINTR) {
			return // done (nanosleep fails otherwise only on a bad argument)
		}
		ts = rem // a signal (the Go runtime's preemption) woke it early
	}
}
