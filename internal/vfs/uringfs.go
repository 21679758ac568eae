package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/uring"
)

// The io_uring backend.
//
// Goroutines: File.WriteAt, Writev and WritevSync of a file opened with
// O_DIRECT queue a pooled request and run the ring from the calling
// goroutine when no other caller is running it (the leader). The leader
// takes every request queued at that moment (up to the submission ring's
// size) into one submission,
// waits for the completions in the kernel, resubmits the remainder of
// short writes and marks each request answered as soon as its own
// completions are in; it leads until its own request is answered. A
// caller that finds the ring running waits for the leader's lock: by then
// the leader has answered its request, or it leads the next batch itself.
// An answered caller may thus wait for a later leader's round too; the
// ring has one caller in practice (the flush loop of each SYNC_FLUSH
// commit log), for which that never happens.
// The ring and everything in the "owned by the leader" block of uringFS
// belong to whoever holds lead. A lone caller, the flush loop of a
// SYNC_FLUSH commit log, thus enters the kernel once a round with no
// goroutine hand-off (a dedicated ring goroutine cost two a round: issue
// 14's single writer).
//
// ReadAt uses pread from the calling goroutine: a read must never queue
// behind an fdatasync. Sync is an fdatasync from the calling goroutine
// too, also WritevSync's after its write (see Sync), and so are the
// writes of a file without O_DIRECT (see WriteAt). Preallocate also runs on the caller's goroutine with pwrite,
// so that zero-filling a segment does not hold up the flushes of the
// active one. Open, directory operations, Map, DirectIO and
// Truncate/Size/Close are the pwrite backend's.
//
// After Close, Open, Preallocate, Map and the files' ReadAt, WriteAt, Writev,
// WritevSync and Sync return ErrClosed; directory operations and the files'
// Truncate, Size and Close, which never use the ring, keep working. As with
// the pwrite backend, a file must not be closed while calls on it are in
// flight.

// ErrClosed is returned (wrapped in *fs.PathError) by operations on an
// io_uring file system, or its files, after its Close.
var ErrClosed = errors.New("vfs: file system closed")

// DefaultRingEntries is the submission ring size NewUring callers use when
// they have no reason to pick another.
const DefaultRingEntries = 256

type uringFS struct {
	osFS // Remove, Rename, MkdirAll, List, Stat, SyncDir

	mu       sync.RWMutex // read-held by a ring call until it is answered; Close write-holds it
	closed   atomic.Bool
	closeErr error // the ring's Close error (teardown's or Close's), returned by the first Close
	pool     reqPool
	maxBatch int

	qmu   sync.Mutex
	queue []*request // queued, not yet taken into a batch; oldest first

	// lead is held by the caller running the ring (the leader).
	lead sync.Mutex

	// owned by the leader
	ring   *uring.Ring
	batch  []*request // the requests being run; index = slot
	again  []int      // slots of requests whose round ended short, to resubmit
	active int        // requests of batch not yet answered
	broken error      // the ring failed; every later request fails with it
	onCQE  func(userData uint64, res int32, flags uint32)
	// submit is ring.SubmitAndWait; tests replace it to make the ring fail.
	submit func(want uint32) (int, error)
	// ringBuffered sends the writes of files without O_DIRECT through the
	// ring too (tests of the ring, which need no alignment that way).
	ringBuffered bool
	stats        struct{ batches, requests, largest int } // read by tests after Close
}

type uringFile struct {
	o      *osFile
	fs     *uringFS
	closed atomic.Bool // set by Close: the fd number may be reused at once
}

// NewUring returns the io_uring backend with a submission ring of entries
// (at least 8) after probing that the kernel supports WRITE, WRITEV and
// READ. It fails when io_uring is unavailable (ENOSYS, EPERM under a
// seccomp profile or kernel.io_uring_disabled) or the probe fails.
func NewUring(entries uint32) (FS, error) {
	ring, err := uring.New(max(entries, 8))
	if err != nil {
		return nil, err
	}
	if err := ring.Probe(uring.OpWrite, uring.OpWritev, uring.OpRead); err != nil {
		_ = ring.Close()
		return nil, err
	}
	return newUringFS(ring), nil
}

// newUringFS wraps ring.
func newUringFS(ring *uring.Ring) *uringFS {
	u := &uringFS{ring: ring}
	u.maxBatch = int(ring.SQEntries()) // a request is one SQE
	u.queue = make([]*request, 0, u.maxBatch)
	u.batch = make([]*request, 0, u.maxBatch)
	u.again = make([]int, 0, u.maxBatch)
	u.onCQE = u.handleCQE
	u.submit = ring.SubmitAndWait
	return u
}

func (u *uringFS) Backend() string { return "io_uring" }

// Close waits for every ring call in flight to be answered, then closes
// the ring. Later calls return nil.
func (u *uringFS) Close() error {
	u.mu.Lock() // every call in flight holds mu shared until it is answered
	defer u.mu.Unlock()
	if u.closed.Load() {
		return nil
	}
	u.closed.Store(true)
	u.lead.Lock()
	defer u.lead.Unlock()
	if err := u.ring.Close(); err != nil { // a no-op after teardown, whose error stays
		u.closeErr = err
	}
	return u.closeErr
}

func (u *uringFS) errClosed(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: ErrClosed}
}

func (u *uringFS) Open(name string, flags OpenFlags) (File, error) {
	if u.closed.Load() {
		return nil, u.errClosed("open", name)
	}
	o, err := openOS(name, flags)
	if err != nil {
		return nil, err
	}
	return &uringFile{o: o, fs: u}, nil
}

func (u *uringFS) file(op string, f File) (*uringFile, error) {
	uf, ok := f.(*uringFile)
	if !ok {
		return nil, fmt.Errorf("vfs: %s: %T is not an io_uring file", op, f)
	}
	if u.closed.Load() {
		return nil, u.errClosed(op, uf.Name())
	}
	return uf, nil
}

// Preallocate zero-fills with pwrite from the calling goroutine.
func (u *uringFS) Preallocate(f File, size int64) error {
	uf, err := u.file("preallocate", f)
	if err != nil {
		return err
	}
	return zeroFill(uf.o, size)
}

func (u *uringFS) DirectIO(f File) bool {
	uf, ok := f.(*uringFile)
	return ok && uf.o.direct
}

func (u *uringFS) Map(f File, size int64, writable bool) (Mapping, error) {
	uf, err := u.file("mmap", f)
	if err != nil {
		return nil, err
	}
	return mapOS(uf.o, size, writable)
}

// call runs r on the ring, waits for its answer and recycles r.
func (u *uringFS) call(f *uringFile, r *request, op string) (int, error) {
	if f.closed.Load() {
		u.pool.put(r)
		return 0, &fs.PathError{Op: op, Path: f.Name(), Err: fs.ErrClosed}
	}
	u.mu.RLock()
	if u.closed.Load() {
		u.mu.RUnlock()
		err := u.errClosed(op, r.name)
		u.pool.put(r)
		return 0, err
	}
	u.exec(r)
	u.mu.RUnlock()
	n, err := r.n, r.err
	u.pool.put(r)
	return n, err
}

// exec queues r and returns once it is answered: run by the caller as the
// leader, or by the leader the caller waited for.
func (u *uringFS) exec(r *request) {
	u.qmu.Lock()
	u.queue = append(u.queue, r)
	u.qmu.Unlock()
	u.lead.Lock()
	defer u.lead.Unlock()
	for !r.answered {
		// r is queued or in nobody's batch: a leader answers every
		// request it takes before it lets go of lead.
		u.take()
		u.stats.batches++
		u.stats.requests += len(u.batch)
		u.stats.largest = max(u.stats.largest, len(u.batch))
		u.run()
		clear(u.batch)
	}
}

// take moves the oldest queued requests, up to maxBatch, into the batch.
func (u *uringFS) take() {
	u.qmu.Lock()
	defer u.qmu.Unlock()
	n := min(len(u.queue), u.maxBatch)
	u.batch = append(u.batch[:0], u.queue[:n]...)
	rest := copy(u.queue, u.queue[n:])
	clear(u.queue[rest:])
	u.queue = u.queue[:rest]
}

func (f *uringFile) request(kind reqKind, off int64) *request {
	r := f.fs.pool.get()
	r.kind, r.fd, r.name, r.off = kind, f.o.fd, f.o.f.Name(), off
	return r
}

// usable returns the error of a call on f after Close of f or of its file
// system (the checks the ring path makes in call), for the operations that
// run on the caller's goroutine.
func (f *uringFile) usable(op string) error {
	if f.fs.closed.Load() {
		return f.fs.errClosed(op, f.Name())
	}
	if f.closed.Load() {
		return &fs.PathError{Op: op, Path: f.Name(), Err: fs.ErrClosed}
	}
	return nil
}

// The writes of a file opened without O_DIRECT are pwrites from the
// calling goroutine: a buffered write is a copy into the page cache, and
// io_uring on ext4 hands it to a kernel worker (BENCHMARKS.md,
// "Alternatives measured"), so the ring adds two hand-offs and gains
// nothing. Files with O_DIRECT (the SYNC_FLUSH commit log) go through the
// ring.

// caller reports whether f's writes run on the caller's goroutine.
func (f *uringFile) caller() bool { return !f.o.direct && !f.fs.ringBuffered }

func (f *uringFile) WriteAt(p []byte, off int64) (int, error) {
	if f.caller() {
		if err := f.usable("pwrite"); err != nil {
			return 0, err
		}
		return f.o.WriteAt(p, off)
	}
	r := f.request(reqWrite, off)
	r.buf = p
	n, err := f.fs.call(f, r, "pwrite")
	runtime.KeepAlive(f) // the fd must stay open until the ring is done
	return n, err
}

func (f *uringFile) Writev(bufs [][]byte, off int64) error {
	if f.caller() {
		if err := f.usable("pwritev"); err != nil {
			return err
		}
		return f.o.Writev(bufs, off)
	}
	r := f.request(reqWritev, off)
	r.bufs = bufs
	_, err := f.fs.call(f, r, "pwritev")
	runtime.KeepAlive(f)
	return err
}

// WritevSync is Writev, then Sync from the calling goroutine.
func (f *uringFile) WritevSync(bufs [][]byte, off int64) error {
	if err := f.Writev(bufs, off); err != nil {
		return err
	}
	return f.Sync()
}

// Sync is an fdatasync from the calling goroutine, like ReadAt. io_uring
// runs an FSYNC on a kernel worker thread (io-wq): linked after the
// write, the hand-off to that thread and back cost a single SYNC_FLUSH
// writer about 10 us a round, more than a second system call
// (BENCHMARKS.md, "Session 14"). And a sync meant to run beside the writes
// (ASYNC_FLUSH's periodic one, a segment's preparation) would hold up
// every write queued behind its batch.
func (f *uringFile) Sync() error {
	if err := f.usable("fdatasync"); err != nil {
		return err
	}
	return f.o.Sync() // holds the descriptor open, allocates nothing (TestUringNoAllocs)
}

// ReadAt is a pread from the calling goroutine.
func (f *uringFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.usable("pread"); err != nil {
		return 0, err
	}
	return f.o.ReadAt(p, off)
}

func (f *uringFile) Truncate(size int64) error { return f.o.Truncate(size) }
func (f *uringFile) Size() (int64, error)      { return f.o.Size() }
func (f *uringFile) Close() error {
	f.closed.Store(true)
	return f.o.Close()
}
func (f *uringFile) Name() string { return f.o.Name() }

// run executes the batch: one submission for the first round of every
// request, then further rounds for short writes, answering each request
// when it is done. An answered request is removed from the batch at once;
// its caller sees the answer once it holds lead (exec).
//
// When the ring fails, a request with operations in flight is not answered
// until their completions arrive: its caller would otherwise free or reuse
// buffers the kernel may still read (a mirror released, the flush loop's
// tail block rewritten). If completions cannot be waited for either, the
// ring is torn down (Ring.Close waits for what is in flight, or pins its
// buffers) before those requests are answered.
func (u *uringFS) run() {
	u.active = 0
	for i, r := range u.batch {
		r.slot = i
		r.begin()
	}
	for _, r := range u.batch {
		if r != nil { // nil: answered by fail
			u.start(r)
		}
	}
	for u.active > 0 {
		if _, err := u.submit(1); err != nil {
			if u.broken != nil { // cannot even wait: tear the ring down
				u.teardown()
				return
			}
			u.fail(err)
			continue
		}
		u.ring.Reap(u.onCQE)
		for _, slot := range u.again {
			if r := u.batch[slot]; r != nil {
				u.start(r)
			}
		}
		u.again = u.again[:0]
	}
}

// teardown closes the ring, which waits for every operation in flight (or
// pins their buffers forever when it cannot), then answers every request
// still waiting with the failure.
func (u *uringFS) teardown() {
	if err := u.ring.Close(); err != nil {
		u.closeErr = err
	}
	for _, r := range u.batch {
		if r != nil {
			r.fail(r.writeOp(), u.broken)
			u.answer(r)
		}
	}
	u.active = 0
}

// answer hands r back to its caller (who sees it once it holds lead).
func (u *uringFS) answer(r *request) {
	u.batch[r.slot] = nil
	r.answered = true
}

// start queues the next round of r, or answers r when nothing is left.
func (u *uringFS) start(r *request) {
	r.nextRound()
	if u.broken != nil {
		r.fail(r.writeOp(), u.broken)
		r.pending = 0
	}
	if r.pending == 0 {
		u.answer(r)
		return
	}
	u.active++
	if err := u.prep(r); err != nil {
		r.pending = 0 // prep failed before queueing anything of r
		u.active--
		u.fail(err)
	}
}

// prep puts r's round (one write) into the submission ring.
func (u *uringFS) prep(r *request) error {
	if u.ring.SQSpaceLeft() == 0 {
		if _, err := u.ring.Submit(); err != nil {
			return err
		}
	}
	s := u.ring.GetSQE()
	if r.kind == reqWrite {
		s.PrepWrite(r.fd, r.buf, uint64(r.off))
	} else {
		s.PrepWritev(r.fd, r.chunkIovs(), uint64(r.off))
	}
	s.SetUserData(uint64(r.slot))
	return nil
}

// handleCQE routes a completion to its request (user data = slot) and
// answers the request when it is done.
func (u *uringFS) handleCQE(ud uint64, res int32, _ uint32) {
	r := u.batch[ud]
	if r == nil || !r.complete(res) {
		return // nil: answered by fail; its late completions are dropped
	}
	u.active--
	if r.advance() {
		u.answer(r)
		return
	}
	u.again = append(u.again, r.slot)
}

// fail marks the ring broken and answers every request of the batch that
// has nothing in flight. Requests with operations in flight stay in the
// batch until their completions arrive (run keeps reaping): the kernel may
// still be reading their buffers.
func (u *uringFS) fail(err error) {
	if u.broken == nil {
		u.broken = fmt.Errorf("vfs: io_uring failed: %w", err)
	}
	for _, r := range u.batch {
		if r != nil && r.pending == 0 {
			r.fail(r.writeOp(), u.broken)
			u.answer(r)
		}
	}
}
