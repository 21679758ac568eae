package commitlog

import (
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The SYNC_FLUSH hold (flush.Sync.MinGap, GapFromRate): the loop measures
// how fast durable waiters arrive, and the policy holds a round after a
// sync while they arrive fast enough, a slice (flush.HoldSlice) at a time
// while each slice sees one arrive, and until as many have arrived since
// the last synced round answered its waiters as it answered
// (flush.Pending.Released, Back: the loop counts them). So a hold ends as
// soon as sends stop arriving, or as soon as a closed loop of synchronous
// senders has sent again, every one: such senders are not kept waiting
// for the rest of the gap (measured: 64 of them fell from 70k to 44k sends
// a second when they were, BENCHMARKS.md session 17), nor for one more
// empty slice (session 19).

// rateWindow is the shortest window the loop measures the arrival rate
// over: at 100k sends a second about 1,000 arrivals.
const rateWindow = 10 * time.Millisecond

// maxPreciseHold is the longest hold slept on the hold timer. Go's timers
// round a sleep under 1 ms up to about 1 ms when the process is otherwise
// idle (measured: 1.08 ms for 100-500 µs), as it is while a closed loop of
// senders waits for a held round. Longer holds wait on a Go timer, which
// Close interrupts.
const maxPreciseHold = time.Millisecond

// arrivalRate counts how fast durable waiters arrive, from the count of
// waiters ever queued (flush.Queue.Arrivals): over windows of at least
// rateWindow, and over each hold.
type arrivalRate struct {
	winAt    time.Time // start of the window being measured
	winCount uint64    // the count at winAt
	win      float64   // the rate over the last whole window
	// During a hold: the count when it began. After it, until the next
	// note: how many arrived during it.
	holding   bool
	holdCount uint64
	afterHold bool
	arrived   uint64
}

// note takes the count read at now, at the top of each loop. A window
// that spans a quiet spell measures the spell as a whole, so the first
// round after a spell longer than the gap is not held.
func (r *arrivalRate) note(count uint64, now time.Time) {
	r.afterHold, r.arrived = r.holding, 0
	if r.holding {
		r.arrived = count - r.holdCount
	}
	r.holding = false
	if d := now.Sub(r.winAt); d >= rateWindow {
		r.win = float64(count-r.winCount) / d.Seconds()
		r.winAt, r.winCount = now, count
	}
}

// holdFrom starts a hold at the count read last.
func (r *arrivalRate) holdFrom(count uint64) { r.holding, r.holdCount = true, count }

// holdTimer sleeps short holds on a timerfd(2) read through Go's poller:
// late by about 10-20 µs on an idle broker (61 µs for 50 µs, measured),
// and the loop's goroutine parks meanwhile, leaving its P to the
// connections (nanosleep(2) would keep the P for most sleeps this short,
// and add the 50 µs timer slack). The timerfd is opened by the first hold,
// so a log that never holds has none.
type holdTimer struct {
	log   *slog.Logger
	tried bool     // the timerfd was opened, or failed to open
	f     *os.File // the timerfd, nil when it could not be made or failed
	fd    int
}

// sleep returns after d. Without the timerfd (it could not be made, or
// it failed once) it sleeps on a Go timer instead.
func (t *holdTimer) sleep(d time.Duration) {
	if d <= 0 {
		return // a zero value would disarm the timer, and the read never end
	}
	if !t.tried {
		t.open()
	}
	if t.f != nil {
		if err := t.wait(d); err == nil {
			return
		}
		t.close() // for good: a failing timer must not make the loop spin
		t.log.Warn("commitlog: the hold timer failed; short SYNC_FLUSH holds now sleep on Go timers")
	}
	time.Sleep(d)
}

func (t *holdTimer) open() {
	t.tried = true
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		t.log.Warn("commitlog: no hold timer; short SYNC_FLUSH holds sleep on Go timers", "err", err)
		return
	}
	t.fd, t.f = fd, os.NewFile(uintptr(fd), "commitlog-hold-timer")
}

func (t *holdTimer) wait(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		return err
	}
	var n [8]byte // the count of expirations
	_, err := t.f.Read(n[:])
	return err
}

func (t *holdTimer) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}
