package consumequeue

import (
	"errors"
	"fmt"
	"math"
	"path"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/vfs"
)

// segment is one file of a queue. refs counts the queue's own reference
// (1 while the segment is in Queue.segs) plus readers that hold it for a
// pread outside the queue lock; the last release closes the file for good.
// The file itself is opened and closed by the store's fileCache (files.go):
// every use pins it.
type segment struct {
	base  int64  // first byte offset in the logical queue
	name  string // path of the file
	q     *Queue
	cache *fileCache
	refs  atomic.Int32

	// guarded by cache.mu
	f       vfs.File // nil while closed
	pins    int      // uses in progress
	opening bool     // a goroutine is opening f
	dirty   bool     // written since the last successful fdatasync
	gen     uint64   // counts pins for writing
	dead    bool     // released: never opened again
	// detached: the file is being or was removed; never opened by name
	// again (the name may be reused)
	detached bool
	// place in the cache's idle list
	prev, next *segment
	inLRU      bool
}

func (q *Queue) newSegment(base int64) *segment {
	s := &segment{base: base, name: path.Join(q.dir, fileName(base)), q: q, cache: q.files}
	s.refs.Store(1)
	return s
}

func (s *segment) acquire() { s.refs.Add(1) }

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.cache.release(s)
	}
}

// use pins the file for reading (or, with write, for changing it).
func (s *segment) use(write bool) (vfs.File, error) { return s.cache.pin(s, 0, write) }

func (s *segment) done() { s.cache.unpin(s) }

// Queue is one logical queue (topic, queueId). See the package doc for which
// goroutine may call what.
//
// Offsets below are queue offsets (entry numbers); byte offsets in the
// logical queue are offset × EntrySize. The logical queue is laid out as
//
//	[segs[0].base/20 … written)  in files (pwritten, not necessarily synced)
//	[written … max)              in pending (memory, visible to readers)
//
// and [synced … written) is written but not yet fdatasynced.
type Queue struct {
	topic    string
	id       int
	dir      string
	parents  []string // directories whose entries must be synced when dir is created
	fs       vfs.FS
	files    *fileCache
	epf      int64 // entries per file
	fileSize int64 // epf × EntrySize

	// wmu serializes everything that does file I/O on the write side:
	// writing pending out, syncing, truncating, deleting files.
	// Lock order: wmu, then mu.
	wmu        sync.Mutex
	dirMade    bool // dir exists on disk (guarded by wmu)
	dirtyDir   bool // files were created or removed since the last SyncDir (wmu)
	parentSync bool // dir was created; its parents need SyncDir (wmu)

	mu      sync.RWMutex
	segs    []*segment // contiguous files, oldest first
	pending []byte     // entries [written, max), encoded
	spare   []byte     // recycled pending buffer
	min     int64      // first readable offset
	max     int64      // next offset to be put
	written int64      // entries below this are in files
	synced  int64      // entries below this are durable
	maxPhys int64      // end (offset+size) of the last real entry; -1 when none
	err     error      // write/sync error: the queue is out of service until Reopen
	closed  bool
	// unsynced is the commit-log offset of the first real entry put that
	// is not durable yet, -1 when every entry put is. lost is, while the
	// queue is out of service or being rebuilt, the commit-log offset from
	// which entries may be missing (a record boundary), -1 when none are
	// (see fault.go). repairing: Reopen ran, the rebuild is not confirmed.
	unsynced  int64
	lost      int64
	repairing bool
	// troubled is the store's count of queues with err set or repairing
	// (Store.troubled); nil before the store adds the queue.
	troubled *atomic.Int64
}

func newQueue(fsys vfs.FS, files *fileCache, root, topic string, id int, epf int64) *Queue {
	topicDir := path.Join(root, topic)
	return &Queue{
		topic:    topic,
		id:       id,
		dir:      path.Join(topicDir, fmt.Sprint(id)),
		parents:  []string{topicDir, root},
		fs:       fsys,
		files:    files,
		epf:      epf,
		fileSize: epf * EntrySize,
		maxPhys:  -1,
		unsynced: -1,
		lost:     -1,
	}
}

// Topic returns the queue's topic.
func (q *Queue) Topic() string { return q.topic }

// ID returns the queue id.
func (q *Queue) ID() int { return q.id }

// MinOffset is the first readable queue offset.
func (q *Queue) MinOffset() int64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.min
}

// MaxOffset is the next queue offset to be put (number of entries ever put,
// as seen by GET_MAX_OFFSET).
func (q *Queue) MaxOffset() int64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.max
}

// MaxPhysicalOffset is the commit-log end offset (offset + size) of the last
// entry, or -1 when the queue has never held an entry. Recovery restarts
// dispatch from the largest value over all queues.
func (q *Queue) MaxPhysicalOffset() int64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.maxPhys
}

// Put appends e at queueOffset. Only the dispatcher goroutine calls Put. The
// entry is visible to Get/Read when Put returns; it reaches the file on the
// next Flush and is durable after a Flush that syncs.
//
// An entry whose record ends at or below MaxPhysicalOffset is skipped with a
// nil error (redispatch after a crash is idempotent). On an empty queue the
// first Put may start at any offset; the slots of the first file before it
// are prefilled. Otherwise queueOffset must equal MaxOffset: larger is
// ErrGap, smaller is ErrConflict.
func (q *Queue) Put(queueOffset int64, e Entry) error {
	if err := checkPut(queueOffset, e); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.maxPhys >= 0 && e.end() <= q.maxPhys {
		return nil
	}
	if q.err != nil {
		if q.lost < 0 {
			q.lost = e.CommitLogOffset // the first entry this queue misses
		}
		return q.err
	}
	if q.maxPhys < 0 {
		q.startAt(queueOffset)
	} else if queueOffset > q.max {
		return fmt.Errorf("%w: %s/%d offset %d, max offset %d", ErrGap, q.topic, q.id, queueOffset, q.max)
	} else if queueOffset < q.max {
		return fmt.Errorf("%w: %s/%d offset %d < max offset %d, record at %d ends past %d",
			ErrConflict, q.topic, q.id, queueOffset, q.max, e.CommitLogOffset, q.maxPhys)
	}
	q.pending = appendEntry(q.pending, e)
	q.max++
	q.maxPhys = e.end()
	if q.unsynced < 0 {
		q.unsynced = e.CommitLogOffset
	}
	return nil
}

func checkPut(queueOffset int64, e Entry) error {
	switch {
	case queueOffset < 0:
		return fmt.Errorf("%w: queue offset %d", ErrInvalid, queueOffset)
	case !e.valid() || e.isPrefill():
		return fmt.Errorf("%w: entry offset %d size %d", ErrInvalid, e.CommitLogOffset, e.Size)
	case e.CommitLogOffset > math.MaxInt64-int64(e.Size):
		return fmt.Errorf("%w: entry offset %d overflows", ErrInvalid, e.CommitLogOffset)
	}
	return nil
}

// startAt positions an empty queue (no files, nothing pending) at off,
// prefilling the slots of its first file before off. Called with mu held.
func (q *Queue) startAt(off int64) {
	base := off - off%q.epf
	q.written, q.synced, q.min, q.max = base, base, off, off
	q.pending = q.pending[:0]
	for i := base; i < off; i++ {
		q.pending = appendEntry(q.pending, prefill)
	}
}

// Get returns the entry at offset.
func (q *Queue) Get(offset int64) (Entry, error) {
	var one [1]Entry
	got, err := q.Read(offset, 1, one[:0])
	if err != nil {
		return Entry{}, err
	}
	if len(got) == 0 {
		return Entry{}, fmt.Errorf("%w: %s/%d offset %d", ErrBeyondMax, q.topic, q.id, offset)
	}
	return got[0], nil
}

// chunkEntries is how many entries one pread reads.
const chunkEntries = 204

var scratchPool = sync.Pool{New: func() any { return new([chunkEntries * EntrySize]byte) }}

// Read appends to dst up to max entries (all up to MaxOffset when max < 0)
// starting at offset and returns the extended slice. It stops at
// MaxOffset; offset == MaxOffset yields no entries and no error. Offsets
// below MinOffset give ErrBelowMin, above MaxOffset ErrBeyondMax. It
// allocates nothing when dst has room for max entries. Read may be called
// from any goroutine.
func (q *Queue) Read(offset int64, max int, dst []Entry) ([]Entry, error) {
	q.mu.RLock()
	err := q.checkRead(offset)
	end := q.max
	if max >= 0 && int64(max) < end-offset {
		end = offset + int64(max)
	}
	q.mu.RUnlock()
	if err != nil {
		return dst, err
	}
	for offset < end {
		n, done, err := q.readChunk(offset, end, &dst)
		if err != nil || done {
			return dst, err
		}
		offset += n
	}
	return dst, nil
}

func (q *Queue) checkRead(offset int64) error {
	switch {
	case q.closed:
		return ErrClosed
	case q.err != nil || q.repairing:
		return q.unavailable()
	case offset < q.min:
		return fmt.Errorf("%w: %s/%d offset %d < min offset %d", ErrBelowMin, q.topic, q.id, offset, q.min)
	case offset > q.max:
		return fmt.Errorf("%w: %s/%d offset %d > max offset %d", ErrBeyondMax, q.topic, q.id, offset, q.max)
	}
	return nil
}

// readChunk appends entries from [offset, end) to *dst: either everything
// still in pending (done = true) or one pread from one file.
func (q *Queue) readChunk(offset, end int64, dst *[]Entry) (n int64, done bool, err error) {
	q.mu.RLock()
	if q.closed || offset < q.min {
		err = q.checkRead(offset)
		q.mu.RUnlock()
		return 0, true, err
	}
	end = min(end, q.max) // TruncateDirty may have shrunk the queue
	if offset >= end {
		q.mu.RUnlock()
		return 0, true, nil
	}
	if offset >= q.written {
		for i := offset; i < end; i++ {
			p := (i - q.written) * EntrySize
			*dst = append(*dst, getEntry(q.pending[p:p+EntrySize]))
		}
		q.mu.RUnlock()
		return end - offset, true, nil
	}
	seg := q.segmentAt(offset)
	n = min(end, q.written, (seg.base+q.fileSize)/EntrySize, offset+chunkEntries) - offset
	seg.acquire()
	q.mu.RUnlock()
	defer seg.release()
	f, err := seg.use(false)
	if err != nil {
		return q.openFailed(offset, err)
	}
	defer seg.done()
	return n, false, q.preadEntries(f, seg, offset, n, dst)
}

// openFailed is the answer to a reader whose file could not be opened.
// Retention or a truncation may have removed the file since the reader
// looked it up (a file that stayed open could still be read after its
// removal; a closed one is not opened again by name): then the reader gets
// what it would get now, looking the offset up again if the queue still
// holds it. Otherwise the queue cannot be read for the moment
// (ErrUnavailable), though it stays in service.
func (q *Queue) openFailed(offset int64, err error) (n int64, done bool, _ error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if cerr := q.checkRead(offset); cerr != nil {
		return 0, true, cerr
	}
	if offset >= q.max {
		return 0, true, nil
	}
	if errors.Is(err, errRemoved) {
		return 0, false, nil
	}
	return 0, true, fmt.Errorf("%w: %s/%d: %w", ErrUnavailable, q.topic, q.id, err)
}

// segmentAt returns the file holding offset, which must lie in
// [segs[0].base/20, written). Called with mu held.
func (q *Queue) segmentAt(offset int64) *segment {
	i := (offset*EntrySize - q.segs[0].base) / q.fileSize
	return q.segs[i]
}

func (q *Queue) preadEntries(f vfs.File, seg *segment, offset, n int64, dst *[]Entry) error {
	buf := scratchPool.Get().(*[chunkEntries * EntrySize]byte)
	defer scratchPool.Put(buf)
	b := buf[:n*EntrySize]
	if _, err := f.ReadAt(b, offset*EntrySize-seg.base); err != nil {
		return fmt.Errorf("consumequeue: read %s at offset %d: %w", seg.name, offset, err)
	}
	for p := 0; p < len(b); p += EntrySize {
		*dst = append(*dst, getEntry(b[p:p+EntrySize]))
	}
	return nil
}
