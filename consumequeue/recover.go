package consumequeue

import (
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/mqd/mqd/internal/vfs"
)

// recoverScanFiles is how many of the newest files recovery validates
// entry by entry (the 3rd-newest onwards, as RocketMQ does); older files
// are trusted when they are full.
const recoverScanFiles = 3

// scanChunk is the read size of the recovery scan (a multiple of EntrySize).
const scanChunk = 3276 * EntrySize

// loadQueue opens the files of one queue directory and recovers its tail.
// It returns a queue with no entries (and no files) when nothing valid is
// on disk. It runs before the queue is shared, so it takes no locks.
func loadQueue(fsys vfs.FS, files *fileCache, root, topic string, id int, epf int64) (*Queue, error) {
	q := newQueue(fsys, files, root, topic, id, epf)
	q.dirMade = true
	bases, err := q.listFiles()
	if err != nil {
		return nil, err
	}
	if err := q.openSegments(bases); err != nil {
		q.close()
		return nil, err
	}
	if err := q.recoverTail(); err != nil {
		q.close()
		return nil, err
	}
	return q, nil
}

// listFiles returns the base offsets of the newest contiguous run of files,
// removing older files separated from it by a gap (left behind when a
// retention removal was not yet durable at a crash).
func (q *Queue) listFiles() ([]int64, error) {
	names, err := q.fs.List(q.dir)
	if err != nil {
		return nil, err
	}
	bases := make([]int64, 0, len(names))
	for _, name := range names {
		base, ok := parseFileName(name)
		if !ok {
			return nil, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, path.Join(q.dir, name))
		}
		if base%q.fileSize != 0 {
			return nil, fmt.Errorf("%w: %s is not a multiple of the file size %d (was EntriesPerFile changed?)",
				ErrCorrupt, path.Join(q.dir, name), q.fileSize)
		}
		bases = append(bases, base)
	}
	first := len(bases) - 1
	for first > 0 && bases[first-1] == bases[first]-q.fileSize {
		first--
	}
	for _, b := range bases[:max(first, 0)] {
		if err := q.fs.Remove(path.Join(q.dir, fileName(b))); err != nil {
			return nil, err
		}
		q.dirtyDir = true
	}
	return bases[max(first, 0):], nil
}

// openSegments adds the files to q.segs and checks their sizes. Their
// descriptors are left to the file cache (files.go).
func (q *Queue) openSegments(bases []int64) error {
	for _, b := range bases {
		s := q.newSegment(b)
		q.segs = append(q.segs, s)
		size, err := s.size()
		if err != nil {
			return err
		}
		if size > q.fileSize {
			return fmt.Errorf("%w: %s has %d bytes, more than the file size %d (was EntriesPerFile changed?)",
				ErrCorrupt, s.name, size, q.fileSize)
		}
	}
	return nil
}

// size returns the file's size.
func (s *segment) size() (int64, error) {
	f, err := s.use(false)
	if err != nil {
		return 0, err
	}
	defer s.done()
	return f.Size()
}

// recoverTail finds the end of the valid entries, truncates after it, and
// sets min, max and maxPhys.
func (q *Queue) recoverTail() error {
	if len(q.segs) == 0 {
		return nil
	}
	cut, n, err := q.findEnd()
	if err != nil {
		return err
	}
	end := q.segs[cut].base/EntrySize + n
	if err := q.cutAfter(cut, n*EntrySize); err != nil {
		return err
	}
	q.mu.Lock()
	q.written, q.synced, q.max = end, end, end
	q.mu.Unlock()
	return q.setMinAndMaxPhys()
}

// findEnd returns the file holding the end of the valid entries and the
// number of valid entries in it. The scan starts at the 3rd-newest file, or
// at an older file that is not full.
func (q *Queue) findEnd() (cut int, n int64, err error) {
	start := max(len(q.segs)-recoverScanFiles, 0)
	for i := 0; i < start; i++ {
		size, err := q.segs[i].size()
		if err != nil {
			return 0, 0, err
		}
		if size != q.fileSize {
			start = i
			break
		}
	}
	last := len(q.segs) - 1
	for cut = start; ; cut++ {
		n, err = q.countValid(q.segs[cut])
		if err != nil || n < q.epf || cut == last {
			return cut, n, err
		}
	}
}

// countValid counts the valid entries at the start of a file: it stops at
// the first invalid (zeroed, torn) entry or at a partial entry at EOF.
func (q *Queue) countValid(s *segment) (int64, error) {
	f, err := s.use(false)
	if err != nil {
		return 0, err
	}
	defer s.done()
	size, err := f.Size()
	if err != nil {
		return 0, err
	}
	size -= size % EntrySize
	buf := make([]byte, scanChunk)
	for off := int64(0); off < size; off += scanChunk {
		b := buf[:min(scanChunk, size-off)]
		if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for p := 0; p < len(b); p += EntrySize {
			if !getEntry(b[p : p+EntrySize]).valid() {
				return (off + int64(p)) / EntrySize, nil
			}
		}
	}
	return size / EntrySize, nil
}

// cutAfter truncates file cut to size bytes and removes the later files.
func (q *Queue) cutAfter(cut int, size int64) error {
	if err := q.segs[cut].truncate(size); err != nil {
		return err
	}
	q.mu.Lock()
	later := q.segs[cut+1:]
	q.segs = q.segs[:cut+1]
	q.mu.Unlock()
	if err := q.removeSegments(later); err != nil {
		return err
	}
	return q.syncDirs()
}

// truncate cuts the file to size bytes, if it is longer or shorter, and
// fdatasyncs it.
func (s *segment) truncate(size int64) error {
	f, err := s.use(false)
	if err != nil {
		return err
	}
	cur, err := f.Size()
	s.done()
	if err != nil || cur == size {
		return err
	}
	if f, err = s.use(true); err != nil {
		return err
	}
	err = f.Truncate(size)
	s.done()
	if err != nil {
		return err
	}
	return s.cache.sync(s)
}

// removeSegments removes files already detached from q.segs. Called with
// wmu held (or before the queue is shared).
func (q *Queue) removeSegments(segs []*segment) error {
	var first error
	for _, s := range segs {
		q.files.detach(s)
		if err := q.fs.Remove(s.name); err != nil && !vfs.IsNotExist(err) && first == nil {
			first = err
		}
		q.dirtyDir = true
		s.release()
	}
	return first
}

// setMinAndMaxPhys sets min to the first entry that is not prefill and
// maxPhys from the last entry. A queue holding only prefill entries (a
// crash right after its first file was started) is emptied.
func (q *Queue) setMinAndMaxPhys() error {
	// Prefill entries are contiguous at the start of the first file.
	lo, hi := q.segs[0].base/EntrySize, q.max
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := q.loadEntry(mid)
		if err != nil {
			return err
		}
		if e.isPrefill() {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == q.max {
		return q.reset()
	}
	last, err := q.loadEntry(q.max - 1)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.min, q.maxPhys = lo, last.end()
	q.mu.Unlock()
	return nil
}

// loadEntry reads one entry from the files (no locks: load/maintenance).
func (q *Queue) loadEntry(off int64) (Entry, error) {
	var b [EntrySize]byte
	s := q.segmentAt(off)
	f, err := s.use(false)
	if err != nil {
		return Entry{}, err
	}
	_, err = f.ReadAt(b[:], off*EntrySize-s.base)
	s.done()
	if err != nil {
		return Entry{}, fmt.Errorf("consumequeue: read %s at offset %d: %w", s.name, off, err)
	}
	return getEntry(b[:]), nil
}

// reset removes every file and returns the queue to the never-written
// state (min = max = 0, maxPhys = -1). Called with wmu held, or at load.
func (q *Queue) reset() error {
	q.mu.Lock()
	segs := q.segs
	q.segs = nil
	q.pending = q.pending[:0]
	q.min, q.max, q.written, q.synced, q.maxPhys, q.unsynced = 0, 0, 0, 0, -1, -1
	q.mu.Unlock()
	if err := q.removeSegments(segs); err != nil {
		return err
	}
	return q.syncDirs()
}
