package index

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
)

// Defaults (MessageStoreConfig maxHashSlotNum, maxIndexNum, maxMsgsNumBatch).
const (
	DefaultMaxHashSlotNum = 5_000_000
	DefaultMaxIndexNum    = 20_000_000
	DefaultMaxQueryNum    = 64
)

// Errors returned by the package (wrapped; test with errors.Is).
var (
	ErrInvalid = errors.New("index: invalid argument")
	ErrCorrupt = errors.New("index: corrupt file")
	ErrClosed  = errors.New("index: closed")
)

// Config configures a Service. Zero fields take the defaults.
type Config struct {
	MaxHashSlotNum int // slots per file
	MaxIndexNum    int // entries per file (entry 0 unused: MaxIndexNum−1 keys fit)
	MaxQueryNum    int // cap on Query's maxNum (maxMsgsNumBatch)
	// Now names new files (local time yyyyMMddHHmmssSSS); tests set it.
	Now func() time.Time
	// Reaper, when set, frees removed files' space in steps (a full file
	// is about 420 MB; see vfs.Reaper); nil: a removed file is freed at
	// once. It must outlive every removal (the engine shares the commit
	// log's).
	Reaper *vfs.Reaper
}

func (c *Config) fill() error {
	if c.MaxHashSlotNum == 0 {
		c.MaxHashSlotNum = DefaultMaxHashSlotNum
	}
	if c.MaxIndexNum == 0 {
		c.MaxIndexNum = DefaultMaxIndexNum
	}
	if c.MaxQueryNum == 0 {
		c.MaxQueryNum = DefaultMaxQueryNum
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxHashSlotNum < 1 || c.MaxHashSlotNum > math.MaxInt32 ||
		c.MaxIndexNum < 2 || c.MaxIndexNum > math.MaxInt32 || c.MaxQueryNum < 1 {
		return fmt.Errorf("%w: config %+v", ErrInvalid, *c)
	}
	return nil
}

// Service is the set of index files under one directory
// (<storePathRootDir>/index). See the package doc for goroutine ownership.
type Service struct {
	fs   vfs.FS
	root string
	lay  layout
	cfg  Config

	// fileMu serializes Flush, DeleteFilesBelow, DropNewerThan and Close
	// (msync, unmap, remove). Lock order: fileMu, then mu.
	fileMu   sync.Mutex
	flushErr error // sticky msync error (fileMu)

	mu       sync.RWMutex // files, their bytes and headers, dirDirty, closed
	files    []*file      // oldest first; the last one takes new keys
	dirDirty bool         // a file was created since the last SyncDir
	closed   bool
}

// Open loads the index files under root (creating root if needed). A file
// whose size does not match the configuration, whose name is not 17
// digits, or whose header is impossible makes Open fail with ErrCorrupt.
func Open(fsys vfs.FS, root string, cfg Config) (*Service, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := fsys.MkdirAll(root); err != nil {
		return nil, err
	}
	s := &Service{
		fs: fsys, root: root, cfg: cfg,
		lay: layout{slots: int32(cfg.MaxHashSlotNum), maxIndex: int32(cfg.MaxIndexNum)},
	}
	if err := s.load(); err != nil {
		s.closeFiles(s.files)
		return nil, err
	}
	return s, nil
}

func (s *Service) load() error {
	names, err := s.fs.List(s.root)
	if err != nil {
		return err
	}
	for i, name := range names {
		if !validName(name) {
			return fmt.Errorf("%w: unexpected file %s in %s", ErrCorrupt, name, s.root)
		}
		if i == len(names)-1 {
			if gone, err := s.removeUnfinished(name); gone || err != nil {
				return err
			}
		}
		f, err := openFile(s.fs, s.root, name, s.lay)
		if err != nil {
			return err
		}
		s.files = append(s.files, f)
	}
	return nil
}

// removeUnfinished removes the newest file when it is shorter than the
// configured size and holds no entry: its creation was cut short by a crash
// before its size became durable, so it was never msynced. A short file
// with entries is left for openFile to report (configuration changed).
func (s *Service) removeUnfinished(name string) (bool, error) {
	p := path.Join(s.root, name)
	st, err := s.fs.Stat(p)
	if err != nil || st.Size() >= s.lay.size() {
		return false, err
	}
	if st.Size() >= HeaderSize {
		count, err := s.readCount(p)
		if err != nil || count > 1 {
			return false, err
		}
	}
	if err := s.fs.Remove(p); err != nil {
		return false, err
	}
	return true, s.fs.SyncDir(s.root)
}

// readCount reads a header's indexCount without mapping the file.
func (s *Service) readCount(p string) (int32, error) {
	f, err := s.fs.Open(p, vfs.ReadOnly)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, err
	}
	return decodeHeader(b[:]).count, nil
}

func validName(name string) bool {
	if len(name) != 17 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}

// Put indexes one message: each non-empty key (the UNIQ_KEY and each KEYS
// token, see AppendKeys) as topic#key. Only the dispatcher goroutine calls
// Put. A message below the newest file's endPhyOffset is skipped (redispatch
// after a crash); a full file is followed by a new one whose begin values
// start from its end values.
func (s *Service) Put(topic string, keys []string, phyOffset, storeTimestamp int64) error {
	if phyOffset < 0 {
		return fmt.Errorf("%w: commit-log offset %d", ErrInvalid, phyOffset)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var again *file // redispatch of the newest indexed message: some keys may be in
	if n := len(s.files); n > 0 {
		last := s.files[n-1]
		if phyOffset < last.h.endPhy {
			return nil
		}
		if phyOffset == last.h.endPhy && last.h.count > 1 {
			again = last
		}
	}
	th := message.JavaStringHash(topic) // once for all the keys
	for _, k := range keys {
		if k == "" {
			continue
		}
		h := keyHashFrom(th, k)
		if again != nil && again.has(h, phyOffset) {
			continue
		}
		cur, err := s.writable()
		if err != nil {
			return err
		}
		cur.put(h, phyOffset, storeTimestamp)
	}
	return nil
}

// EndPhyOffset is the commit-log offset of the newest indexed message (the
// newest file's endPhyOffset), 0 when there is no file.
func (s *Service) EndPhyOffset() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.files) == 0 {
		return 0
	}
	return s.files[len(s.files)-1].h.endPhy
}

// writable returns the file that takes the next key, creating the first
// file or the next one when the newest is full. Called with mu held.
func (s *Service) writable() (*file, error) {
	var prev *header
	if n := len(s.files); n > 0 {
		last := s.files[n-1]
		if !last.full() {
			return last, nil
		}
		prev = &last.h
	}
	f, err := createFile(s.fs, s.root, s.nextName(), s.lay, prev)
	if err != nil {
		return nil, fmt.Errorf("index: create file: %w", err)
	}
	s.files = append(s.files, f)
	s.dirDirty = true
	return f, nil
}

// nextName is the creation local time as yyyyMMddHHmmssSSS, bumped past
// the newest existing name when the clock gives an equal or older one, so
// names stay unique and sorted. Called with mu held.
func (s *Service) nextName() string {
	t := s.cfg.Now()
	name := t.Format("20060102150405") + fmt.Sprintf("%03d", t.Nanosecond()/1e6)
	if n := len(s.files); n > 0 && name <= s.files[n-1].name {
		v, _ := strconv.ParseUint(s.files[n-1].name, 10, 64)
		name = fmt.Sprintf("%017d", v+1)
	}
	return name
}

// Query returns the commit-log offsets (ascending, without duplicates) of
// up to maxNum messages (capped at Config.MaxQueryNum) indexed under
// topic#key with an index time in [begin, end] (ms), walking files newest
// to oldest (Java's IndexService.queryOffset), plus the newest file's endTimestamp and
// endPhyOffset (QUERY_MESSAGE's indexLastUpdateTimestamp/-Phyoffset).
//
// Only key hashes are compared: the CALLER must read each record and check
// that its topic and KEYS/UNIQ_KEY really contain key. Index times have
// one-second resolution relative to the file's begin time (rounded down).
// Any goroutine may call Query.
func (s *Service) Query(topic, key string, maxNum int, begin, end int64) (offsets []int64, lastUpdateTimestamp, lastUpdatePhyOffset int64, err error) {
	hash := KeyHash(topic, key)
	maxNum = min(maxNum, s.cfg.MaxQueryNum)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, 0, ErrClosed
	}
	if len(s.files) == 0 {
		return nil, 0, 0, nil
	}
	last := s.files[len(s.files)-1]
	for i := len(s.files) - 1; i >= 0 && len(offsets) < maxNum; i-- {
		f := s.files[i]
		if f.overlaps(begin, end) {
			offsets = f.collect(hash, maxNum, begin, end, offsets)
		}
		if f.h.beginTs < begin {
			break
		}
	}
	slices.Sort(offsets)
	return slices.Compact(offsets), last.h.endTs, last.h.endPhy, nil
}

// Flush msyncs every file changed since the last Flush (and the directory
// after a file was created). It returns the endTimestamp of the newest
// full file it made durable, or 0 when it flushed no full file: the engine
// stores a non-zero value as the checkpoint's indexMsgTimestamp and flushes
// the checkpoint. An msync error is sticky: every later Flush returns it
// (the index is then rebuilt from the commit log after the next crash).
// Called by the engine's flush goroutine; Put and Query run concurrently.
func (s *Service) Flush() (indexMsgTimestamp int64, err error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if s.flushErr != nil {
		return 0, s.flushErr
	}
	todo, fullTs, dirDirty, err := s.takeDirty()
	if err != nil {
		return 0, err
	}
	if dirDirty {
		if err := s.fs.SyncDir(s.root); err != nil {
			s.flushErr = fmt.Errorf("index: sync %s: %w", s.root, err)
			return 0, s.flushErr
		}
	}
	for _, f := range todo {
		writeBackPaced(f.m, f.lay.size())
		if err := f.m.Sync(); err != nil {
			s.flushErr = fmt.Errorf("index: msync %s: %w", f.path, err)
			return 0, s.flushErr
		}
	}
	return fullTs, nil
}

// writeBackStep is how much of an index file one paced write-back covers.
const writeBackStep = 4 << 20

// writeBackPaced writes m's changed pages back in steps of writeBackStep,
// pausing twice a step's duration after each that took more than a
// millisecond, so that the msync after it finds little to write. An msync
// of a whole file writes everything changed since the last one at once:
// at 100k msg/s, ~40 MB of hash slots and entries every 10 s, which the
// disk queued ahead of the commit log's fdatasyncs (issue 14: a 55-93 ms
// p99 second every 10 s at 100k SYNC_FLUSH, 29 ms without the flush).
// Errors are left to the msync, which reports them.
func writeBackPaced(m vfs.Mapping, size int64) {
	for off := int64(0); off < size; off += writeBackStep {
		t0 := time.Now()
		if m.WriteBack(off, min(writeBackStep, size-off)) != nil {
			return
		}
		if d := time.Since(t0); d > time.Millisecond {
			time.Sleep(2 * d)
		}
	}
}

// takeDirty clears and returns the dirty files and the largest
// endTimestamp among those that are full (their content is final).
func (s *Service) takeDirty() (todo []*file, fullTs int64, dirDirty bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, false, ErrClosed
	}
	for _, f := range s.files {
		if !f.dirty {
			continue
		}
		f.dirty = false
		todo = append(todo, f)
		if f.full() {
			fullTs = max(fullTs, f.h.endTs)
		}
	}
	dirDirty, s.dirDirty = s.dirDirty, false
	return todo, fullTs, dirDirty, nil
}

// DeleteFilesBelow is retention: it removes, oldest first, the files whose
// endPhyOffset is below minPhys (the commit-log min offset), never the
// newest file. It returns how many it removed.
func (s *Service) DeleteFilesBelow(minPhys int64) (int, error) {
	return s.remove(func(i, n int, f *file) bool {
		return i < n-1 && f.h.endPhy < minPhys
	}, true)
}

// DropNewerThan removes every file whose endTimestamp is after ts. After an
// abnormal exit the engine calls it right after Open with the checkpoint's
// indexMsgTimestamp (Java's DefaultMessageStore.load step 3): those files may be torn, and the
// commit-log redispatch rebuilds their keys.
func (s *Service) DropNewerThan(ts int64) (int, error) {
	return s.remove(func(_, _ int, f *file) bool { return f.h.endTs > ts }, false)
}

// remove detaches the files matching drop (stopping at the first miss when
// prefix is set) and deletes them once no Query can see them.
func (s *Service) remove(drop func(i, n int, f *file) bool, prefix bool) (int, error) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	var keep, gone []*file
	for i, f := range s.files {
		if drop(i, len(s.files), f) && (!prefix || len(keep) == 0) {
			gone = append(gone, f)
		} else {
			keep = append(keep, f)
		}
	}
	s.files = keep
	s.mu.Unlock()
	return len(gone), s.deleteFiles(gone)
}

// deleteFiles unmaps and removes files already detached from the list,
// syncs the directory, then closes them, through the reaper when there is
// one and the unlinks are durable (so a crash never leaves a file linked
// and short). Called with fileMu held.
func (s *Service) deleteFiles(gone []*file) error {
	if len(gone) == 0 {
		return nil
	}
	var errs []error
	for _, f := range gone {
		errs = append(errs, f.m.Close())
		if err := s.fs.Remove(f.path); err != nil && !vfs.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.fs.SyncDir(s.root))
	reap := s.cfg.Reaper != nil && errors.Join(errs...) == nil
	for _, f := range gone {
		if reap {
			s.cfg.Reaper.Add(f.f)
		} else {
			errs = append(errs, f.f.Close())
		}
	}
	return errors.Join(errs...)
}

// Close msyncs the files changed since the last Flush, then unmaps and
// closes every file. Call Flush first to learn indexMsgTimestamp.
func (s *Service) Close() error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	files := s.files
	s.files = nil
	s.mu.Unlock()
	var errs []error
	for _, f := range files {
		if f.dirty {
			errs = append(errs, f.m.Sync())
		}
	}
	errs = append(errs, s.flushErr)
	s.closeFiles(files)
	return errors.Join(errs...)
}

func (s *Service) closeFiles(files []*file) {
	for _, f := range files {
		_ = f.close()
	}
}
