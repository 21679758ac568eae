// Package commitlog is the segmented append-only log that holds every
// message of every topic (format: FORMAT.md beside this file).
//
// Goroutines and what they own:
//
//   - Appenders (any goroutine) take Log.mu for a few hundred nanoseconds:
//     they assign the physical offset and store timestamp, encode their
//     records straight into the tail segment's in-memory mirror, advance
//     the tail and, when their append waits (the flush.Wait they pass:
//     WaitDurable under SYNC_FLUSH, WaitWritten under ASYNC_FLUSH), queue
//     a waiter.
//     Then they wake the flush loop and wait outside the lock, or, with
//     AppendAsync, return at once: their flush.Completer is told the
//     outcome on the flush loop (or by the waiter's expiry timer).
//   - The flush loop (one goroutine) owns the files' write side and the
//     fdatasync: it takes the waiters and the tail under mu, writes every
//     byte appended since its last write with one vectored write (aligned
//     O_DIRECT blocks under SYNC_FLUSH when the file system allows, the
//     page cache under ASYNC_FLUSH), syncs when the policy says so (always
//     when someone waits for durability: one write + one fdatasync release
//     every waiter; a waiter for the write alone is released by the
//     write), then publishes the written and durable offsets. ASYNC_FLUSH's
//     periodic sync runs on a goroutine of its own beside the writes; the
//     loop starts it and publishes its outcome (beside.go). A failed write
//     or sync is sticky: every waiter and every later append gets the
//     error until the log is reopened.
//   - The preallocation goroutine creates, zero-fills and directory-syncs
//     the next segment and maps its mirror while the current one fills.
//   - The mirror loop populates the tail mirror's memory ahead of the
//     appenders; the flush loop drops what falls behind the in-memory
//     window (keeper.go).
//   - Readers (any goroutine) copy records from a mirror, holding the
//     chunks they read so the memory outlives them, or read the file.
//
// Lock order: rollMu, then mu. No I/O is done while holding mu; an append
// that fills a segment before the next one is prepared waits for it with
// mu released (awaitPrepared, one waiter at a time under rollMu).
package commitlog

import (
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

// Config configures a Log.
type Config struct {
	Dir         string
	SegmentSize int64        // mappedFileSizeCommitLog; a multiple of 4096; default 1 GiB
	Policy      flush.Policy // default flush.DefaultAsync
	// MaxWrite caps the bytes of one write of the flush loop (default 1
	// MiB). Recovery uses it to tell a torn write from corruption (see
	// classify).
	MaxWrite int64
	// MirrorWindow is how many of the newest bytes of the log are kept in
	// memory for readers (keeper.go); default 256 MiB, or two segments
	// when they are smaller. It is rounded up to whole chunks, at least 2.
	MirrorWindow int64
	// MirrorChunk is the unit in which the window's memory is populated
	// and released; a multiple of 4096, default 32 MiB or the segment
	// size when smaller.
	MirrorChunk int64
	// Fallocate reserves new segments with fallocate instead of writing
	// zeros. Zero-filled segments halve fdatasync latency (no extent
	// conversion) but double the bytes written; ASYNC_FLUSH, which syncs
	// twice a second, is better served by fallocate.
	Fallocate bool
	// BufferedIO writes through the page cache instead of O_DIRECT under
	// a durable policy too (an alternative measured in BENCHMARKS.md; not
	// the default). A policy that is not durable (ASYNC_FLUSH) always
	// writes through the page cache: see buffered.
	BufferedIO bool
	// Prefault touches the window's pages ahead of the appenders, on the
	// preallocation goroutine and the mirror loop (default off in tests;
	// engines turn it on).
	Prefault bool
	// Recovery says where the previous run left off (from the checkpoint).
	Recovery Hint
	Logger   *slog.Logger
}

// Hint is what the checkpoint tells recovery.
type Hint struct {
	// Clean is true when the previous run shut down cleanly (no abort file)
	// and Offset is the exact end of the log it left.
	Clean bool
	// Offset is a record boundary at or below Durable; the scan starts
	// there.
	Offset int64
	// Durable is the checkpoint's durable offset: every record below it was
	// durable, so an invalid record below it is corruption, never a torn
	// tail (0: unknown).
	Durable int64
	// Timestamp is the store time of the record ending at Offset (the
	// checkpoint's physicMsgTimestamp): store times never go backwards
	// across a restart even when recovery scans no record.
	Timestamp int64
	// Writer is the flush policy the previous run wrote the log with
	// (recorded in the checkpoint). Recovery judges the tail by it; when
	// unknown (an older checkpoint), by this run's policy and MaxWrite.
	Writer Writer
}

// Writer is what recovery needs to know of the policy that wrote the log:
// its mode and, under SYNC_FLUSH, the most bytes ever written but not
// synced (MaxWrite: each piece of a round is synced before the next).
type Writer struct {
	Mode     flush.Mode
	MaxWrite int64
}

// Writer describes this log's own policy, for the checkpoint to record.
func (l *Log) Writer() Writer { return Writer{Mode: l.cfg.Policy.Mode(), MaxWrite: l.cfg.MaxWrite} }

// Frame overhead: each record is followed by a CRC-32C of its bytes.
const trailerSize = 4

// blankSize is the end-of-segment marker: int32 bytes left, int32 magic.
const blankSize = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors.
var (
	ErrClosed   = errors.New("commitlog: closed")
	ErrTooLarge = errors.New("commitlog: record larger than a segment")
	// ErrSegment wraps a failure to prepare the next segment (disk full,
	// permissions). It is not sticky: a later append tries again.
	ErrSegment = errors.New("commitlog: cannot prepare the next segment")
)

// Batch is what one append writes: Len records, contiguous, in one segment.
// Encode is called under the append lock with each record's physical offset
// and the store timestamp; it must write exactly Size(i) bytes and do
// nothing slow. Size(i) is read before Encode(i), and Len before the
// first; after the last Encode the log reads neither again.
type Batch interface {
	Len() int
	Size(i int) int
	Encode(i int, dst []byte, physOffset, storeTimestamp int64)
}

// Result says where an append went.
type Result struct {
	Offset         int64 // physical offset of the first record
	End            int64 // offset just past the last frame
	StoreTimestamp int64
}

// Log is an open commit log.
type Log struct {
	cfg Config
	fs  vfs.FS
	log *slog.Logger

	mu      sync.Mutex
	segs    []*segment  // ordered by base; the last is the tail segment
	tail    int64       // next append offset
	tailTS  int64       // store timestamp of the last append
	waiters flush.Queue // WaitDurable appenders: released by a round's sync
	wrote   flush.Queue // WaitWritten appenders: released by a round's write
	closed  bool

	view    atomic.Pointer[[]*segment] // copy of segs for readers
	written atomic.Int64               // bytes handed to the files
	durable atomic.Int64               // bytes made durable by fdatasync
	durTS   atomic.Int64               // store timestamp of the last durable record
	failure atomic.Pointer[error]      // sticky write/sync error
	failed  chan struct{}              // closed when failure is set

	kick         chan struct{}
	stop         chan struct{}
	loopDone     chan struct{}
	want         chan int64
	ready        chan prepared
	preallocDone chan struct{}
	onAdvance    atomic.Pointer[func()]
	forceUpTo    atomic.Int64 // Flush: sync at least up to here, whatever the policy
	minOffset    atomic.Int64
	rollMu       sync.Mutex              // one appender waits for a prepared segment (segment.go)
	next         *segment                // a prepared segment taken by awaitPrepared (mu)
	prepFailed   prepFailure             // the last failed preparation, not yet asked again (mu; segment.go)
	noSpace      atomic.Pointer[error]   // a write failed with ENOSPC; cleared by a write that works
	flushStats   flushCounters           // stats.go
	keepKick     chan struct{}           // wakes the mirror loop (keeper.go)
	pool         *chunkPool              // dropped chunks' pages, for the next (pool.go)
	reaper       *vfs.Reaper             // frees removed segments' space in steps (vfs.Reaper)
	upcoming     atomic.Pointer[segment] // the last segment prepared, for the mirror loop
	keeperDone   chan struct{}           // closed when the mirror loop ends
	hurry        atomic.Int32            // goroutines waiting for the segment being prepared (pace.go)
	wake         chan struct{}           // tells the preparation someone waits (pace.go)
}

func (c *Config) defaults() error {
	if c.SegmentSize == 0 {
		c.SegmentSize = 1 << 30
	}
	if c.SegmentSize%vfs.Alignment != 0 || c.SegmentSize < 2*vfs.Alignment {
		return fmt.Errorf("commitlog: segment size %d is not a multiple of %d (at least 2 blocks)", c.SegmentSize, vfs.Alignment)
	}
	if c.Policy == nil {
		c.Policy = flush.DefaultAsync
	}
	if c.MaxWrite == 0 {
		c.MaxWrite = 1 << 20
	}
	c.MaxWrite &^= vfs.Alignment - 1
	if c.MaxWrite < vfs.Alignment {
		c.MaxWrite = vfs.Alignment
	}
	if c.MirrorChunk == 0 {
		c.MirrorChunk = min(defaultMirrorChunk, c.SegmentSize)
	}
	if c.MirrorChunk%vfs.Alignment != 0 || c.MirrorChunk <= 0 {
		return fmt.Errorf("commitlog: mirror chunk %d is not a positive multiple of %d", c.MirrorChunk, vfs.Alignment)
	}
	if c.MirrorWindow == 0 {
		c.MirrorWindow = min(defaultMirrorWindow, 2*c.SegmentSize)
	}
	c.MirrorWindow = max(2*c.MirrorChunk, (c.MirrorWindow+c.MirrorChunk-1)/c.MirrorChunk*c.MirrorChunk)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Open recovers the log in cfg.Dir (creating it if empty) and starts its
// goroutines.
func Open(fsys vfs.FS, cfg Config) (*Log, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	l := &Log{
		cfg: cfg, fs: fsys, log: cfg.Logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), loopDone: make(chan struct{}), failed: make(chan struct{}),
		want: make(chan int64, 1), ready: make(chan prepared, 1), preallocDone: make(chan struct{}),
		wake: make(chan struct{}, 1), keepKick: make(chan struct{}, 1), keeperDone: make(chan struct{}),
		pool: &chunkPool{size: cfg.MirrorChunk, max: mirrorPoolChunks},
	}
	l.reaper = vfs.NewReaper(l.stop, func() bool { return l.noSpace.Load() != nil || l.hurry.Load() > 0 })
	if err := fsys.MkdirAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	if err := l.recover(); err != nil {
		l.closeSegments()
		l.pool.close()
		return nil, err
	}
	l.publish()
	go l.preallocLoop()
	l.want <- l.tailSegment().base + cfg.SegmentSize
	go l.flushLoop()
	go l.mirrorLoop()
	return l, nil
}

// buffered reports whether segments are written through the page cache.
// Under ASYNC_FLUSH a send waits for its write (flush.WaitWritten), which
// the page cache answers in microseconds where an O_DIRECT write waits for
// the device; its periodic fdatasync runs beside the writes (beside.go).
// Under SYNC_FLUSH every write is followed by an fdatasync, and O_DIRECT
// measured better (BENCHMARKS.md, "Alternatives measured").
func (l *Log) buffered() bool { return l.cfg.BufferedIO || !l.cfg.Policy.Durable() }

func (l *Log) tailSegment() *segment { return l.segs[len(l.segs)-1] }

// publish copies segs for lock-free readers. Called with mu held (or
// before the log is shared).
func (l *Log) publish() {
	v := append([]*segment(nil), l.segs...)
	l.view.Store(&v)
	if len(v) > 0 {
		l.minOffset.Store(v[0].base)
	}
}

// Err returns the sticky error, if any.
func (l *Log) Err() error {
	if p := l.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// Tail is the offset the next append will get (appended, maybe not written).
func (l *Log) Tail() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tail
}

// Written is the offset up to which bytes have been handed to the files.
func (l *Log) Written() int64 { return l.written.Load() }

// Durable is the offset up to which bytes are known durable.
func (l *Log) Durable() int64 { return l.durable.Load() }

// Visible is the offset up to which readers may see records: the policy's
// choice between the written and the durable offset.
func (l *Log) Visible() int64 {
	d := l.durable.Load() // before written: durable <= written holds for the pair
	return l.cfg.Policy.Visible(l.written.Load(), d)
}

// DurableTimestamp is the store timestamp of the last durable record (the
// checkpoint's physicMsgTimestamp).
func (l *Log) DurableTimestamp() int64 { return l.durTS.Load() }

// MinOffset is the base of the oldest segment.
func (l *Log) MinOffset() int64 { return l.minOffset.Load() }

// Reaper frees removed segments' space in steps; the store hands it the
// index's removed files too, so that the two never free space at once.
// It pauses until Close, and not while the log is short of space.
func (l *Log) Reaper() *vfs.Reaper { return l.reaper }

// SegmentSize is the configured segment size.
func (l *Log) SegmentSize() int64 { return l.cfg.SegmentSize }

// OnAdvance registers f, called by the flush loop (it must not block) each
// time the written or durable offset moves.
func (l *Log) OnAdvance(f func()) { l.onAdvance.Store(&f) }

// MaxRecordSize is the largest record a segment can hold.
func (l *Log) MaxRecordSize() int { return int(l.cfg.SegmentSize) - blankSize - trailerSize }

// Append appends b's records contiguously and waits as w says: with
// flush.NoWait it returns once they are in the log's memory; with
// flush.WaitWritten once they are written to the files; with
// flush.WaitDurable once they are durable. A wait ends with
// flush.ErrTimeout after the policy's WaitTimeout (the records are then in
// the log but their durability is unknown), or the sticky error.
func (l *Log) Append(b Batch, w flush.Wait) (Result, error) {
	res, waiter, err := l.appendBatch(b, w, nil)
	if err != nil || waiter == nil {
		return res, err
	}
	return res, waiter.Wait(l.cfg.Policy.WaitTimeout())
}

// AppendAsync is Append with flush.WaitDurable or flush.WaitWritten (w)
// that does not block: when the append succeeded, c is told the outcome
// once (flush.Completer: nil, the log's error, or flush.ErrTimeout after
// the policy's WaitTimeout), on the flush loop; when it failed, c is never
// called. The batch is encoded before AppendAsync returns.
func (l *Log) AppendAsync(b Batch, w flush.Wait, c flush.Completer) (Result, error) {
	if w == flush.NoWait {
		return Result{}, errors.New("commitlog: AppendAsync needs a wait")
	}
	res, _, err := l.appendBatch(b, w, c)
	return res, err
}

// appendBatch appends b and queues its waiter when w asks for one: an
// asynchronous one for c when c is not nil, else the returned Waiter.
func (l *Log) appendBatch(b Batch, w flush.Wait, c flush.Completer) (Result, *flush.Waiter, error) {
	total := 0
	for i := 0; i < b.Len(); i++ {
		n := b.Size(i)
		if n < message.MinRecordSize || n > l.MaxRecordSize() {
			return Result{}, nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
		}
		total += n + trailerSize
	}
	if int64(total) > l.cfg.SegmentSize-blankSize {
		return Result{}, nil, fmt.Errorf("%w: batch of %d bytes", ErrTooLarge, total)
	}
	now := time.Now() // the records' timestamp and the waiter's deadline
	l.mu.Lock()
	res, err := l.appendLocked(b, int64(total), now)
	for err == errRollWait { // the next segment is not prepared: wait without the lock
		next := l.tailSegment().base + l.cfg.SegmentSize
		l.mu.Unlock()
		if err = l.awaitPrepared(next); err != nil {
			return Result{}, nil, err
		}
		now = time.Now()
		l.mu.Lock()
		res, err = l.appendLocked(b, int64(total), now)
	}
	var waiter *flush.Waiter
	if err == nil {
		waiter = l.queueWaiter(w, res.End, c, now)
	}
	l.mu.Unlock()
	if err != nil {
		return Result{}, nil, err
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return res, waiter, nil
}

// queueWaiter queues, under mu, what an append ending at end waits for
// (w): nothing (NoWait), its write or its sync; an asynchronous waiter for
// c when c is not nil (then it returns nil), else the returned Waiter.
func (l *Log) queueWaiter(w flush.Wait, end int64, c flush.Completer, now time.Time) *flush.Waiter {
	q := &l.waiters
	switch w {
	case flush.NoWait:
		return nil
	case flush.WaitWritten:
		q = &l.wrote
	}
	if c != nil {
		q.AddAsyncAt(end, now, l.cfg.Policy.WaitTimeout(), c)
		return nil
	}
	return q.Add(end)
}

// appendLocked reserves total bytes at the tail (rolling to a new segment
// when they do not fit) and encodes the batch there, stamped now.
func (l *Log) appendLocked(b Batch, total int64, now time.Time) (Result, error) {
	dst, res, err := l.reserveLocked(total, now)
	if err != nil {
		return Result{}, err
	}
	pos := 0
	for i, k := 0, b.Len(); i < k; i++ { // Len once: a batch may forget its messages as the last is encoded
		n := b.Size(i)
		rec := dst[pos : pos+n]
		b.Encode(i, rec, res.Offset+int64(pos), res.StoreTimestamp)
		putUint32(dst[pos+n:], crc32.Checksum(rec, castagnoli))
		pos += n + trailerSize
	}
	return res, nil
}

// reserveLocked moves the tail total bytes on (rolling to a new segment
// when they do not fit) and returns the memory for them, to be filled
// before l.mu is released, and where they went, stamped now.
func (l *Log) reserveLocked(total int64, now time.Time) ([]byte, Result, error) {
	if l.closed {
		return nil, Result{}, ErrClosed
	}
	if err := l.Err(); err != nil {
		return nil, Result{}, errFailed(err)
	}
	if p := l.noSpace.Load(); p != nil {
		return nil, Result{}, fmt.Errorf("%w: refusing appends until a write succeeds again: %w", ErrDiskFull, *p)
	}
	seg := l.tailSegment()
	if l.tail+total+blankSize > seg.base+l.cfg.SegmentSize {
		var err error
		if seg, err = l.roll(seg); err != nil {
			return nil, Result{}, err
		}
	}
	ts := now.UnixMilli()
	if ts < l.tailTS {
		ts = l.tailTS // store timestamps never go backwards
	}
	m := seg.mem.Load()
	pos := l.tail - seg.base
	m.claim(pos + total)
	res := Result{Offset: l.tail, StoreTimestamp: ts, End: l.tail + total}
	l.tail, l.tailTS = res.End, ts
	return m.buf[pos : pos+total], res, nil
}

// roll ends seg with a blank marker and makes the prepared next segment the
// tail. When the preallocation goroutine is behind it returns errRollWait:
// Append waits for the segment outside the lock and tries again.
func (l *Log) roll(seg *segment) (*segment, error) {
	next, ok := l.takeReady(seg.base + l.cfg.SegmentSize)
	if !ok {
		return nil, errRollWait
	}
	pos := l.tail - seg.base
	m := seg.mem.Load()
	m.claim(pos + blankSize)
	buf := m.buf
	putUint32(buf[pos:], uint32(l.cfg.SegmentSize-pos))
	putUint32(buf[pos+4:], message.MagicBlank)
	seg.sealed.Store(pos + blankSize)
	l.tail = next.base
	l.segs = append(l.segs, next)
	l.publish()
	l.want <- next.base + l.cfg.SegmentSize
	return next, nil
}

func putUint32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// Flush makes everything appended so far durable, whatever the policy, and
// waits for it (up to a minute).
func (l *Log) Flush() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	w := l.waiters.Add(l.tail)
	for cur := l.forceUpTo.Load(); cur < l.tail && !l.forceUpTo.CompareAndSwap(cur, l.tail); cur = l.forceUpTo.Load() {
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return w.Wait(time.Minute)
}

// Close writes and syncs everything appended, stops the goroutines and
// closes the files. It returns the sticky error if the log had failed, or
// an ErrDiskFull error if appended bytes could not be written.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.loopDone
	// At most one segment is being prepared (interrupted by l.stop) and
	// l.ready has room for it, so the preallocator finishes promptly.
	close(l.want)
	<-l.preallocDone
	select {
	case p := <-l.ready:
		if p.seg != nil {
			p.seg.close()
		}
	default:
	}
	l.rollMu.Lock() // an appender waiting for a segment has given up
	if l.next != nil {
		l.next.close()
		l.next = nil
	}
	l.rollMu.Unlock()
	<-l.keeperDone
	l.closeSegments()
	l.pool.close()
	l.reaper.Wait() // l.stop is closed: what is queued closes at once
	if err := l.Err(); err != nil {
		return err
	}
	// A final round that failed with ENOSPC is not sticky, but the bytes
	// appended since the last write (acknowledged to NoWait appenders) are
	// not in the files: say so rather than report a clean close.
	if lost := l.tail - l.written.Load(); lost > 0 {
		err := fmt.Errorf("%w: %d appended bytes at offset %d not written at close", ErrDiskFull, lost, l.written.Load())
		if p := l.noSpace.Load(); p != nil {
			err = fmt.Errorf("%w: %w", err, *p)
		}
		return err
	}
	return nil
}

func (l *Log) closeSegments() {
	for _, s := range l.segs {
		s.close()
	}
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
