package commitlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/vfs"
	"golang.org/x/sys/unix"
)

// segment is one file of the log, named by its 20-digit base offset.
type segment struct {
	base  int64
	wf    vfs.File // write handle (O_DIRECT when the file system allows); nil for sealed segments opened at recovery
	rf    vfs.File // buffered read handle
	mem   atomic.Pointer[mirror]
	valid int64 // mirror holds bytes [valid, size) of the segment; set before publication
	// sealed is, once the segment is full, the offset within it just past
	// the blank marker; 0 while it is the tail segment.
	sealed atomic.Int64
}

// mirror is an in-memory copy of a segment: appenders encode into it, the
// flush loop writes from it, and readers copy recent records out of it. Its
// bytes below the log tail never change once written. It is reference
// counted because readers may still copy from it when the log retires it.
type mirror struct {
	buf  []byte
	refs atomic.Int64 // 1 for the log while the segment is recent, +1 per reader
}

// acquire takes a reader reference, or returns false when the mirror is
// already released. A count that reached zero never rises again.
func (m *mirror) acquire() bool {
	for {
		v := m.refs.Load()
		if v <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// release drops a reference and frees the memory with the last one.
func (m *mirror) release() {
	if m.refs.Add(-1) == 0 {
		vfs.FreeAligned(m.buf)
	}
}

func newMirror(size int64, prefault bool, stop <-chan struct{}) (*mirror, error) {
	buf, err := vfs.AlignedBuffer(int(size))
	if err != nil {
		return nil, err
	}
	if prefault {
		// Touching 1 GiB of fresh pages costs ~260k page faults; take them
		// here, off the append path. Failure (old kernel) only costs speed;
		// a Close stops it early.
		_ = unix.Madvise(buf, unix.MADV_HUGEPAGE)
		for off := 0; off < len(buf) && !pause(stop, preparePause); off += prepareStep {
			_ = unix.Madvise(buf[off:min(off+prepareStep, len(buf))], 23 /* MADV_POPULATE_WRITE */)
		}
	}
	m := &mirror{buf: buf}
	m.refs.Store(1)
	return m, nil
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

// prepareStep is how much of a segment is zero-filled or prefaulted
// between checks for Close, so closing never waits for a whole 1 GiB.
const prepareStep = 64 << 20

// createSegment makes the segment at base ready for appends: created (or
// reopened after a crash), zero-filled to full size, its directory entry
// synced, its mirror allocated. It runs on the preallocation goroutine
// (and once in Open); stop interrupts it with errStopped, leaving a short
// file that the next preparation or recovery completes.
func (l *Log) createSegment(base int64, stop <-chan struct{}) (*segment, error) {
	path := l.segmentPath(base)
	flags := vfs.Create | vfs.Direct
	if l.cfg.BufferedIO {
		flags = vfs.Create
	}
	wf, err := l.fs.Open(path, flags)
	if err != nil {
		return nil, fmt.Errorf("commitlog: create %s: %w", path, err)
	}
	s := &segment{base: base, wf: wf}
	if l.cfg.Fallocate {
		if err := vfs.Fallocate(l.fs, wf, l.cfg.SegmentSize); err != nil {
			wf.Close()
			return nil, fmt.Errorf("commitlog: fallocate %s: %w", path, err)
		}
	}
	for size := int64(prepareStep); !l.cfg.Fallocate; size += prepareStep {
		if size > prepareStep && pause(stop, preparePause) {
			wf.Close()
			return nil, errStopped
		}
		if err := l.fs.Preallocate(wf, min(size, l.cfg.SegmentSize)); err != nil {
			wf.Close()
			return nil, fmt.Errorf("commitlog: preallocate %s: %w", path, err)
		}
		if size >= l.cfg.SegmentSize {
			break
		}
	}
	if err := l.fs.SyncDir(l.cfg.Dir); err != nil {
		wf.Close()
		return nil, fmt.Errorf("commitlog: sync dir %s: %w", l.cfg.Dir, err)
	}
	if s.rf, err = l.fs.Open(path, vfs.ReadOnly); err != nil {
		wf.Close()
		return nil, err
	}
	m, err := newMirror(l.cfg.SegmentSize, l.cfg.Prefault, stop)
	if err != nil {
		s.close()
		return nil, err
	}
	s.mem.Store(m)
	return s, nil
}

// preparePause spaces the steps of a background segment preparation, so
// that zero-filling and prefaulting 1 GiB (a disk-bound and a CPU-bound
// job) leave room for the appends and fdatasyncs being served meanwhile:
// measured, an unpaced preparation right after start-up pushed SYNC_FLUSH
// ack p99 at 10k msg/s from ~2 ms to ~150 ms. 16 steps of 64 MiB with
// 30 ms pauses still prepare a segment in about 1.5 s, far ahead of need.
const preparePause = 30 * time.Millisecond

// pause waits d or until stop closes (reported true). A nil stop (the
// synchronous preparation in Open) does not wait.
func pause(stop <-chan struct{}, d time.Duration) bool {
	if stop == nil {
		return false
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

// dropMirror releases the log's reference to the mirror; readers then go to
// the file.
func (s *segment) dropMirror() {
	if m := s.mem.Swap(nil); m != nil {
		m.release()
	}
}

func (s *segment) close() {
	s.dropMirror()
	if s.wf != nil {
		s.wf.Close()
	}
	if s.rf != nil {
		s.rf.Close()
	}
}

// preallocLoop prepares segments ahead of need. It owns nothing but the
// segment it is preparing; it hands each to the appender through l.ready.
func (l *Log) preallocLoop() {
	defer close(l.preallocDone)
	for base := range l.want {
		s, err := l.createSegment(base, l.stop)
		if err != nil && err != errStopped {
			l.log.Error("commitlog: preparing the next segment failed", "base", base, "err", err)
		}
		l.ready <- prepared{seg: s, err: err}
	}
}

type prepared struct {
	seg *segment
	err error
}
