package commitlog

import "time"

// Pacing of a background segment preparation (zero-filling the file under
// SYNC_FLUSH, populating the mirror's first chunks), so that it leaves room
// for the appends and fdatasyncs served meanwhile on two cores. Measured:
// an unpaced preparation right after start-up pushed SYNC_FLUSH ack p99 at
// 10k msg/s from ~2 ms to ~150 ms; and with fixed 64 MiB steps spaced by
// 30 ms, prefaulting a fresh 1 GiB mirror in a virtual machine (where the
// host backs each page on first touch: ~95 ms of kernel time per step, one
// core held for each) pushed ASYNC_FLUSH p99 at 50k msg/s to 300-480 ms for
// the 2-4 s it took. Steps are now small and each is followed by a pause
// three times its own length, at most preparePauseMax, so a preparation of
// small steps takes at most a quarter of a core however slow the machine
// makes each one. A 1 GiB segment lasts ~20 s at 50k msg/s of 1 KiB; when
// the writes reach the middle of the segment before the one being
// prepared, or someone waits for it (an appender at the roll, the broker's
// start), the preparation stops pausing, a pause under way included.

// prepareStep is how much of a mirror is populated in one step, and
// prepareFileStep how much of a file is zero-filled. An O_DIRECT file is
// synced once after its last step (a sync per step made the host persist
// each step at once, and the commit log's fdatasyncs waited behind it); a
// buffered one after every step, so that its dirty pages never pile up.
const (
	prepareStep     = 8 << 20
	prepareFileStep = 64 << 20
)

const (
	preparePauseFactor = 3                      // pause = factor x the step's duration
	preparePauseMin    = 2 * time.Millisecond   // ... at least this
	preparePauseMax    = 100 * time.Millisecond // ... at most this
	preparePauseSlice  = 10 * time.Millisecond  // urgency is checked at least this often
)

// pacer spaces the steps of one preparation.
type pacer struct {
	stop   <-chan struct{} // Close; nil for Open's synchronous preparation, which never pauses
	wake   <-chan struct{} // signalled when someone starts waiting for the segment
	urgent func() bool     // the segment is needed soon: no more pauses
}

// pacer returns the pacing for preparing the segment at base: urgent once
// the bytes written pass the middle of the segment before it, or while
// someone waits for it.
func (l *Log) pacer(base int64, stop <-chan struct{}) pacer {
	return pacer{stop: stop, wake: l.wake, urgent: func() bool {
		return l.hurry.Load() > 0 || base-l.written.Load() < l.cfg.SegmentSize/2
	}}
}

// hurryUp makes the preparation under way stop pausing until the returned
// func is called (awaitPrepared).
func (l *Log) hurryUp() (done func()) {
	l.hurry.Add(1)
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return func() { l.hurry.Add(-1) }
}

// step runs f, then pauses. It reports whether stop has closed (then it
// does not pause).
func (p pacer) step(f func()) (stopped bool) {
	t0 := time.Now()
	f()
	if p.stop == nil {
		return false
	}
	return p.pause(p.pauseAfter(time.Since(t0)))
}

// pauseAfter is the pause after a step that took d.
func (p pacer) pauseAfter(d time.Duration) time.Duration {
	if p.isUrgent() {
		return 0
	}
	return min(preparePauseMax, max(preparePauseMin, preparePauseFactor*d))
}

func (p pacer) isUrgent() bool { return p.urgent != nil && p.urgent() }

// pause waits d, in slices after which it stops early once urgent; a
// wake-up or a closed stop (reported true) ends it at once.
func (p pacer) pause(d time.Duration) bool {
	for {
		select {
		case <-p.stop:
			return true
		default:
		}
		if d <= 0 || p.isUrgent() {
			return false
		}
		slice := min(d, preparePauseSlice)
		d -= slice
		t := time.NewTimer(slice)
		select {
		case <-p.stop:
			t.Stop()
			return true
		case <-p.wake:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
