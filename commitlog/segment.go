package commitlog

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// segment is one file of the log, named by its 20-digit base offset.
type segment struct {
	base  int64
	wf    vfs.File // write handle (O_DIRECT when the file system allows and the log is not buffered); nil for sealed segments opened at recovery
	rf    vfs.File // buffered read handle
	mem   atomic.Pointer[mirror]
	valid int64 // mirror holds bytes [valid, size) of the segment; set before publication
	// sealed is, once the segment is full, the offset within it just past
	// the blank marker; 0 while it is the tail segment.
	sealed atomic.Int64
	// files counts the holders of wf and rf: 1 for the log while the
	// segment is in Log.segs, +1 per reader between finding the segment
	// and its last pread. The last release closes both files, so a reader
	// descheduled across a retention removal never preads a closed (and
	// possibly reused) descriptor.
	files refCount
	// reap, set when retention removed the segment, takes its files from
	// the last release: it frees their space in steps (vfs.Reaper).
	reap *vfs.Reaper
}

// refCount counts the holders of something freed with the last one. A
// count that reached zero never rises again.
type refCount struct{ n atomic.Int64 }

// acquire takes a reference, or returns false when the count already
// reached zero.
func (r *refCount) acquire() bool {
	for {
		v := r.n.Load()
		if v <= 0 {
			return false
		}
		if r.n.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// release drops a reference and reports whether it was the last.
func (r *refCount) release() bool { return r.n.Add(-1) == 0 }

// newSegment returns a segment holding the log's reference to its files.
func newSegment(base int64) *segment {
	s := &segment{base: base}
	s.files.n.Store(1)
	return s
}

// acquireFiles takes a reader reference on the segment's files, or returns
// false when they are closed (the segment was removed).
func (s *segment) acquireFiles() bool { return s.files.acquire() }

// releaseFiles drops a reference and closes the files with the last one.
func (s *segment) releaseFiles() {
	if !s.files.release() {
		return
	}
	if s.reap != nil {
		s.reap.Add(s.wf, s.rf)
		return
	}
	if s.wf != nil {
		s.wf.Close()
	}
	if s.rf != nil {
		s.rf.Close()
	}
}

// segmentName is the file name of the segment starting at base.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseSegmentName returns the base offset named by a file name.
func parseSegmentName(name string) (int64, bool) {
	if len(name) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(name, 10, 64)
	return v, err == nil && v >= 0
}

func (l *Log) segmentPath(base int64) string { return filepath.Join(l.cfg.Dir, segmentName(base)) }

// errStopped ends a preparation interrupted by Close.
var errStopped = errors.New("commitlog: closing")

// createSegment makes the segment at base ready for appends: created (or
// reopened after a crash), zero-filled to full size, its directory entry
// synced, its mirror mapped, unwritten below from, and populated from
// from up to to (mirror.go). It runs on the preallocation goroutine
// (and once in Open); stop interrupts it with errStopped, leaving a short
// file that the next preparation or recovery completes.
func (l *Log) createSegment(base, from, to int64, stop <-chan struct{}) (*segment, error) {
	path := l.segmentPath(base)
	flags := vfs.Create | vfs.Direct
	if l.buffered() {
		flags = vfs.Create
	}
	wf, err := l.fs.Open(path, flags)
	if err != nil {
		return nil, fmt.Errorf("commitlog: create %s: %w", path, err)
	}
	s := newSegment(base)
	s.wf = wf
	p := l.pacer(base, stop) // pace.go
	direct := l.fs.DirectIO(wf)
	if l.cfg.Fallocate {
		if err := vfs.Fallocate(l.fs, wf, l.cfg.SegmentSize); err != nil {
			wf.Close()
			return nil, fmt.Errorf("commitlog: fallocate %s: %w", path, err)
		}
	}
	for size := int64(prepareFileStep); !l.cfg.Fallocate; size += prepareFileStep {
		var err error
		stopped := p.step(func() {
			err = l.fs.Preallocate(wf, min(size, l.cfg.SegmentSize))
			if err == nil && !direct && size < l.cfg.SegmentSize {
				err = wf.Sync() // pace.go: buffered steps are synced each; the last by the sync below
			}
		})
		if err != nil {
			wf.Close()
			return nil, fmt.Errorf("commitlog: preallocate %s: %w", path, err)
		}
		if size >= l.cfg.SegmentSize {
			break
		}
		if stopped {
			wf.Close()
			return nil, errStopped
		}
	}
	// This sync also covers a buffered file's last step (the loop above
	// syncs the others). One fdatasync for the whole preparation of an
	// O_DIRECT file, not one per step: a step's own fdatasync made the
	// host persist its 64 MiB of zeros at once, and the commit log's
	// fdatasyncs queued behind it (100 ms-1.4 s flush rounds at 100k
	// msg/s in 3 of 7 runs; none in 5 runs without). The zeros written
	// meanwhile are persisted a little at a time by the commit log's own
	// fdatasyncs.
	if err := wf.Sync(); err != nil {
		wf.Close()
		return nil, fmt.Errorf("commitlog: sync %s: %w", path, err)
	}
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
		wf.Close()
		return nil, fmt.Errorf("commitlog: sync dir %s: %w", l.cfg.Dir, err)
	}
	if s.rf, err = l.fs.Open(path, vfs.ReadOnly); err != nil {
		wf.Close()
		return nil, err
	}
	m, err := newMirror(l.cfg.SegmentSize, l.cfg.MirrorChunk, from, to, l.cfg.Prefault, l.pool, p) // mirror.go
	if err != nil {
		s.close()
		return nil, err
	}
	s.mem.Store(m)
	return s, nil
}

// dropMirror releases the log's reference to the mirror; readers then go to
// the file, and the memory is unmapped with the last reader's release.
func (s *segment) dropMirror() {
	if m := s.mem.Swap(nil); m != nil {
		m.retired.Store(true)
		m.release()
	}
}

// close drops the log's hold on the segment: its mirror at once, its
// files once the last reader released them.
func (s *segment) close() {
	s.dropMirror()
	s.releaseFiles()
}

// preallocLoop prepares segments ahead of need. It owns nothing but the
// segment it is preparing; it hands each to the appender through l.ready.
// It first checks that the segment and a reserve fit in the free space, so
// that preparing never takes the last free bytes (the consume queues, the
// index and the checkpoint still need some). A preparation that failed is
// removed, never completed later: after a failed write or fdatasync the
// zero-fill cannot be trusted, and a retried fdatasync could report success
// for pages the kernel dropped.
func (l *Log) preallocLoop() {
	defer close(l.preallocDone)
	for base := range l.want {
		var s *segment
		err := l.checkSpace(base)
		if err == nil {
			// Populated by the mirror loop as the writes near it, from
			// the chunks the window dropped (keeper.go).
			s, err = l.createSegment(base, 0, 0, l.stop)
			if err != nil && err != errStopped {
				l.discardPrepared(base)
			}
			if err == nil {
				l.upcoming.Store(s)
			}
		}
		if err != nil && err != errStopped {
			l.log.Error("commitlog: preparing the next segment failed", "base", base, "err", err)
		}
		l.ready <- prepared{base: base, seg: s, err: err}
	}
}

// ErrDiskFull wraps a failure for lack of space: a segment that does not
// fit (with the reserve), or a write that failed with ENOSPC. It is not
// sticky: nothing acknowledged was lost, and appends resume by themselves
// once space is freed (see Log.Append and FORMAT.md).
var ErrDiskFull = errors.New("commitlog: disk full")

// prepareReserve is the free space a segment preparation leaves: a
// sixteenth of a segment, at least 1 MiB and at most 64 MiB.
func prepareReserve(segmentSize int64) int64 { return min(max(segmentSize/16, 1<<20), 64<<20) }

// checkSpace fails with ErrDiskFull when preparing the segment at base
// would leave less than the reserve free. A file layer that cannot tell
// the free space lets the preparation find out.
func (l *Log) checkSpace(base int64) error {
	free, ok, err := vfs.FreeSpace(l.fs, l.cfg.Dir)
	if !ok || err != nil {
		return nil
	}
	var have int64
	if st, err := l.fs.Stat(l.segmentPath(base)); err == nil {
		have = st.Size()
	}
	need, reserve := l.cfg.SegmentSize-have, prepareReserve(l.cfg.SegmentSize)
	if free < need+reserve {
		return fmt.Errorf("%w: the next segment needs %d bytes and a reserve of %d, %d are free", ErrDiskFull, need, reserve, free)
	}
	return nil
}

// discardPrepared removes the file of a failed preparation (best effort:
// a leftover is zero-filled again by the next attempt only after removal
// succeeded, or is found beyond the log end by recovery, which holds no
// data there).
func (l *Log) discardPrepared(base int64) {
	if err := l.fs.Remove(l.segmentPath(base)); err != nil && !vfs.IsNotExist(err) {
		l.log.Warn("commitlog: removing a failed segment preparation", "base", base, "err", err)
		return
	}
	_ = l.fs.SyncDir(l.cfg.Dir)
}

// errRollWait tells Append that the tail segment is full and the next one
// is not prepared yet: it waits for it outside the append lock.
var errRollWait = errors.New("commitlog: waiting for the next segment")

// takeReady returns the prepared next segment without waiting. Called with
// mu held. A failed preparation taken here may be stale (space may have
// been freed since): a fresh one is asked for once its back-off has
// passed (retryPrepare), and Append waits for it.
func (l *Log) takeReady(base int64) (*segment, bool) {
	if p := l.next; p != nil {
		l.next = nil
		if p.base == base {
			return p, true
		}
		// cannot happen: segments are prepared in order, one at a time
		l.log.Error("commitlog: internal error: prepared segment does not follow the tail", "base", p.base, "want", base)
		p.close()
		l.want <- base
		return nil, false
	}
	l.retryPrepare(time.Now())
	select {
	case p := <-l.ready:
		if p.err == nil && p.base == base {
			l.prepFailed.backoff = 0
			return p.seg, true
		}
		l.keepOrRetry(p)
	default:
	}
	return nil, false
}

// prepFailure is a failed preparation that was not asked for again yet.
// Until retryAt, appenders that need the segment fail at once with err
// instead of asking again: without the back-off every append of a full
// or broken disk started a preparation and logged its failure (tens of
// thousands a second; seen with a store directory deleted under a
// running broker).
type prepFailure struct {
	err     error         // nil: no failure waits for its retry
	base    int64         // the segment to ask for again
	retryAt time.Time     // when it may be asked for again
	backoff time.Duration // the next failure's wait (0 after a success)
}

// Preparation retry back-off: the first retry after prepBackoffMin, each
// further failure doubling it up to prepBackoffMax (the longest a disk
// freed of its full state waits for appends to resume).
const (
	prepBackoffMin = 50 * time.Millisecond
	prepBackoffMax = time.Second
)

// retryPrepare asks for a failed preparation again once its back-off has
// passed. Called with mu held.
func (l *Log) retryPrepare(now time.Time) {
	f := &l.prepFailed
	if f.err != nil && !now.Before(f.retryAt) {
		f.err = nil
		l.want <- f.base
	}
}

// keepOrRetry handles a prepared result that cannot be installed now: a
// failure (kept, to be asked for again after its back-off) or a segment
// for a later roll (parked in l.next). Called with mu held.
func (l *Log) keepOrRetry(p prepared) {
	if p.err == nil {
		l.next = p.seg
		return
	}
	f := &l.prepFailed
	f.backoff = min(max(2*f.backoff, prepBackoffMin), prepBackoffMax)
	f.err, f.base, f.retryAt = p.err, p.base, time.Now().Add(f.backoff)
}

// awaitPrepared waits, without the append lock, until the segment at base
// is prepared and parks it for the next roll; one appender waits at a
// time, the others queue on rollMu. It fails after 5 s, or when the
// preparation failed (ErrDiskFull for lack of space, else ErrSegment), at
// once while a failed preparation waits for its retry.
func (l *Log) awaitPrepared(base int64) error {
	l.rollMu.Lock()
	defer l.rollMu.Unlock()
	if err := l.Err(); err != nil { // the log's own failure comes first
		return errFailed(err)
	}
	l.mu.Lock()
	if l.closed { // Close closed l.want: nothing may be asked for again
		l.mu.Unlock()
		return ErrClosed
	}
	done := l.next != nil || l.tailSegment().base >= base
	l.retryPrepare(time.Now())
	failed := l.prepFailed.err
	l.mu.Unlock()
	if done { // another appender waited for it meanwhile
		return nil
	}
	if failed != nil {
		return prepareError(failed)
	}
	defer l.hurryUp()() // the preparation stops pausing (pace.go)
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	var p prepared
	select {
	case p = <-l.ready:
	case <-deadline.C:
		return fmt.Errorf("%w: not ready after 5s", ErrSegment)
	case <-l.failed: // the log failed meanwhile: no segment makes appends work again
		return errFailed(l.Err())
	case <-l.stop:
		return ErrClosed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		if p.seg != nil {
			p.seg.close()
		}
		return ErrClosed
	}
	l.keepOrRetry(p)
	if p.err != nil {
		return prepareError(p.err)
	}
	l.prepFailed.backoff = 0
	return nil
}

// errFailed is what an append gets once the log has failed.
func errFailed(err error) error {
	return fmt.Errorf("commitlog: refusing appends after a failed write or sync (reopen to recover): %w", err)
}

// prepareError classifies a failed preparation for the appender.
func prepareError(err error) error {
	if errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return fmt.Errorf("%w: %w", ErrSegment, err)
}

// AwaitNext waits until the segment after the current tail is prepared
// (Open starts that preparation) and parks it for the roll. A service calls
// it before it takes traffic, so that zero-filling the next 1 GiB does
// not compete with its first appends (issue 14: SYNC_FLUSH ack p99 in the
// first seconds after start). It fails as a roll waiting
// for the segment would (ErrDiskFull, ErrSegment, ErrClosed), except that
// it keeps waiting up to timeout, not a roll's 5 s: a paced preparation on
// a busy disk takes longer, and nothing waits behind this call.
func (l *Log) AwaitNext(timeout time.Duration) error {
	l.mu.Lock()
	base := l.tailSegment().base + l.cfg.SegmentSize
	l.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		err := l.awaitPrepared(base)
		if !errors.Is(err, ErrSegment) || time.Now().After(deadline) {
			return err
		}
		select { // a failed preparation was asked for again; do not spin
		case <-time.After(100 * time.Millisecond):
		case <-l.stop:
			return ErrClosed
		}
	}
}

type prepared struct {
	base int64 // the segment asked for (a failed one is asked for again)
	seg  *segment
	err  error
}

// writeNoSpace handles a write (not an fdatasync) that failed with ENOSPC,
// e.g. on a file system that allocates on overwrite. Nothing is lost: the
// bytes are still in the mirror, durable bytes were not touched (a
// rewritten block keeps its leading bytes, FORMAT.md), and the flush loop
// writes the range again each second. Meanwhile appends are refused with
// ErrDiskFull and the waiters of this round are told their durability is
// unknown (flush.ErrTimeout: FLUSH_DISK_TIMEOUT, stored, not lost). An
// fdatasync failure, ENOSPC or not, stays sticky: the kernel may have
// dropped the pages it failed to write, so it is never retried.
func (l *Log) writeNoSpace(err error, ws roundWaiters) bool {
	var pe *fs.PathError
	if !errors.Is(err, syscall.ENOSPC) || (errors.As(err, &pe) && pe.Op == "fdatasync") {
		return false
	}
	if l.noSpace.Swap(&err) == nil {
		l.log.Error("commitlog: disk full; refusing appends until a write succeeds again", "err", err)
	}
	ws.release(0, 0, fmt.Errorf("%w: %w: %w", flush.ErrTimeout, ErrDiskFull, err))
	return true
}

// spaceBack ends a disk-full state after a write succeeded.
func (l *Log) spaceBack() {
	if l.noSpace.Swap(nil) != nil {
		l.log.Info("commitlog: writes succeed again; accepting appends")
	}
}
