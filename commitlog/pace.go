package commitlog

import "time"

// Pacing of a background segment preparation (zero-filling the file under
// SYNC_FLUSH, prefaulting or clearing the mirror), so that it leaves room
// for the appends and fdatasyncs served meanwhile on two cores. Measured:
// an unpaced preparation right after start-up pushed SYNC_FLUSH ack p99 at
// 10k msg/s from ~2 ms to ~150 ms; and with fixed 64 MiB steps spaced by
// 30 ms, prefaulting a fresh 1 GiB mirror in a virtual machine (where the
// host backs each page on first touch: ~95 ms of kernel time per step, one
// core held for each) pushed ASYNC_FLUSH p99 at 50k msg/s to 300-480 ms for
// the 2-4 s it took. Steps are now small and each is followed by a pause
// three times its own length, so a preparation takes at most a quarter of
// a core however slow the machine makes it; it still ends far ahead of
// need (a 1 GiB segment lasts ~20 s at 50k msg/s of 1 KiB), and when the
// appends come within a quarter segment of needing it, it stops pausing.

// prepareStep is how much of a mirror is prefaulted or cleared in one
// step, and prepareFileStep how much of a file is zero-filled (and synced:
// fewer, larger steps make fewer journal commits for the commit log's
// fdatasyncs to wait behind).
const (
	prepareStep     = 8 << 20
	prepareFileStep = 64 << 20
)

const (
	preparePauseFactor = 3                    // pause = factor x the step's duration
	preparePauseMin    = 2 * time.Millisecond // ... and at least this
)

// pacer spaces the steps of one preparation.
type pacer struct {
	stop   <-chan struct{} // Close; nil for Open's synchronous preparation, which never pauses
	urgent func() bool     // the appends are about to need the segment
}

// pacer returns the pacing for preparing the segment at base: urgent once
// the bytes written come within a quarter segment of base, or while
// someone waits for it (an appender at the roll, the broker's start).
func (l *Log) pacer(base int64, stop <-chan struct{}) pacer {
	return pacer{stop: stop, urgent: func() bool {
		return l.hurry.Load() > 0 || base-l.written.Load() < l.cfg.SegmentSize/4
	}}
}

// step runs f, then pauses. It reports whether stop has closed (then it
// does not pause).
func (p pacer) step(f func()) (stopped bool) {
	t0 := time.Now()
	f()
	if p.stop == nil {
		return false
	}
	return pause(p.stop, p.pauseAfter(time.Since(t0)))
}

// pauseAfter is the pause after a step that took d.
func (p pacer) pauseAfter(d time.Duration) time.Duration {
	if p.urgent != nil && p.urgent() {
		return 0
	}
	return max(preparePauseMin, preparePauseFactor*d)
}

// pause waits d or until stop closes (reported true).
func pause(stop <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return true
	case <-t.C:
		return false
	}
}
