package consumequeue

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/vfs"
)

// Config configures a Store.
type Config struct {
	// EntriesPerFile is the number of 20-byte entries per file; 0 means
	// DefaultEntriesPerFile (6 000 000-byte files). It must not change
	// between runs over the same directory (Open reports ErrCorrupt).
	EntriesPerFile int
	// MaxOpenFiles bounds how many consume-queue files the store keeps
	// open at once (files.go); 0 means DefaultMaxOpenFiles(), negative
	// means no bound (an open failing with EMFILE still closes idle
	// files first).
	MaxOpenFiles int
}

// Store holds every consume queue under one root directory
// (<storePathRootDir>/consumequeue).
type Store struct {
	fs    vfs.FS
	files *fileCache
	root  string
	epf   int64

	mu     sync.RWMutex
	queues map[string]map[int]*Queue
	closed bool
	// troubled counts queues out of service or being rebuilt (fault.go),
	// never fewer than there are: Broken and LostFloor, which the engine
	// calls every second, skip walking every queue while it is 0 (issue
	// 14: with 80,000 queues that walk was a dispatcher stall a second).
	troubled atomic.Int64
	// deletions counts DeleteTopic calls, bumped as a topic leaves the
	// map: a caller keeping Queue values (the engine's dispatcher) drops
	// them when it changes (Deletions).
	deletions atomic.Uint64
}

// Deletions is how many topics were deleted since Open. A caller keeping
// Queue values across calls drops them when it changes: a deleted topic's
// queues are closed one by one after it leaves the store, and until then
// they would still take puts that then vanish with them.
func (s *Store) Deletions() uint64 { return s.deletions.Load() }

// Open loads every queue found under root, recovering each queue's tail
// (see FORMAT.md). Queues with no valid entry on disk are left out.
func Open(fsys vfs.FS, root string, cfg Config) (*Store, error) {
	epf := int64(cfg.EntriesPerFile)
	if epf == 0 {
		epf = DefaultEntriesPerFile
	}
	if epf < 1 || epf > 1<<40 {
		return nil, fmt.Errorf("%w: EntriesPerFile %d", ErrInvalid, cfg.EntriesPerFile)
	}
	if err := fsys.MkdirAll(root); err != nil {
		return nil, err
	}
	limit := cfg.MaxOpenFiles
	if limit == 0 {
		limit = DefaultMaxOpenFiles()
	}
	s := &Store{fs: fsys, files: newFileCache(fsys, limit), root: root, epf: epf, queues: map[string]map[int]*Queue{}}
	if err := s.load(); err != nil {
		s.closeQueues()
		return nil, err
	}
	return s, nil
}

func (s *Store) load() error {
	topics, err := s.subdirs(s.root)
	if err != nil {
		return err
	}
	for _, topic := range topics {
		ids, err := s.subdirs(path.Join(s.root, topic))
		if err != nil {
			return err
		}
		for _, name := range ids {
			id, err := strconv.Atoi(name)
			if err != nil || id < 0 || strconv.Itoa(id) != name {
				return fmt.Errorf("%w: unexpected directory %s", ErrCorrupt, path.Join(s.root, topic, name))
			}
			q, err := loadQueue(s.fs, s.files, s.root, topic, id, s.epf)
			if err != nil {
				return err
			}
			if q.maxPhys < 0 {
				q.close()
				continue
			}
			s.add(q)
		}
	}
	return nil
}

// subdirs lists the directories in dir (files are ignored).
func (s *Store) subdirs(dir string) ([]string, error) {
	names, err := s.fs.List(dir)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, n := range names {
		st, err := s.fs.Stat(path.Join(dir, n))
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			dirs = append(dirs, n)
		}
	}
	return dirs, nil
}

func (s *Store) add(q *Queue) {
	q.troubled = &s.troubled // q is new and not shared yet: nothing troubles it
	m := s.queues[q.topic]
	if m == nil {
		m = map[int]*Queue{}
		s.queues[q.topic] = m
	}
	m[q.id] = q
}

// checkTopic rejects names that are not a single path element.
func checkTopic(topic string) error {
	if topic == "" || topic == "." || topic == ".." || len(topic) > 255 ||
		strings.ContainsAny(topic, "/\x00") {
		return fmt.Errorf("%w: topic %q", ErrInvalid, topic)
	}
	return nil
}

// Queue returns the queue (topic, queueID), creating it in memory if needed
// (its directory and first file are created by the first Flush after a Put).
func (s *Store) Queue(topic string, queueID int) (*Queue, error) {
	if q, ok := s.Lookup(topic, queueID); ok {
		return q, nil
	}
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if queueID < 0 {
		return nil, fmt.Errorf("%w: queue id %d", ErrInvalid, queueID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if q := s.queues[topic][queueID]; q != nil {
		return q, nil
	}
	// topic may alias a commit-log buffer (the dispatcher passes record
	// bytes): the queue and the map keep their own copy.
	q := newQueue(s.fs, s.files, s.root, strings.Clone(topic), queueID, s.epf)
	s.add(q)
	return q, nil
}

// Lookup returns an existing queue without creating one (for readers: a
// pull on an unknown queue must not create it).
func (s *Store) Lookup(topic string, queueID int) (*Queue, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	q := s.queues[topic][queueID]
	return q, q != nil
}

// Topics returns the topics that have at least one queue, sorted.
func (s *Store) Topics() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.queues))
	for t := range s.queues {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// QueueIDs returns the queue ids of topic, sorted.
func (s *Store) QueueIDs(topic string) []int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]int, 0, len(s.queues[topic]))
	for id := range s.queues[topic] {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

// DeleteTopic removes every queue of topic and its files (DELETE_TOPIC).
// Later calls on those Queue values return ErrClosed; the dispatcher must
// get the queue again with Store.Queue to recreate it.
func (s *Store) DeleteTopic(topic string) error {
	s.mu.Lock()
	qs := s.queues[topic]
	delete(s.queues, topic)
	s.deletions.Add(1)
	s.mu.Unlock()
	var errs []error
	for _, q := range qs {
		errs = append(errs, q.destroy())
	}
	if len(qs) > 0 {
		// Best effort, like the queue directories: Open ignores empty ones.
		_ = s.fs.Remove(path.Join(s.root, topic))
		errs = append(errs, s.fs.SyncDir(s.root))
	}
	return errors.Join(errs...)
}

func (s *Store) snapshot() []*Queue {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Queue
	for _, m := range s.queues {
		for _, q := range m {
			out = append(out, q)
		}
	}
	return out
}

// Flush flushes every queue (see Queue.Flush). The engine calls Flush(2)
// every second and Flush(0) every 60 s; to persist the checkpoint's
// logicsMsgTimestamp, read the store time of the last dispatched message
// before calling Flush(0) and record it after Flush(0) returned nil.
// Queues already out of service are skipped (LostFloor accounts for
// them); a queue that fails in this call is reported (ErrUnavailable), so
// that a dispatched offset read before the call is not checkpointed.
func (s *Store) Flush(minPages int) error {
	var errs []error
	for _, q := range s.snapshot() {
		if q.Broken() {
			continue
		}
		if err := q.Flush(minPages); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TruncateDirty calls Queue.TruncateDirty on every queue (recovery, before
// dispatch starts).
func (s *Store) TruncateDirty(physEnd int64) error {
	var errs []error
	for _, q := range s.snapshot() {
		errs = append(errs, skipUnavailable(q.TruncateDirty(physEnd)))
	}
	return errors.Join(errs...)
}

// DeleteBelow calls Queue.DeleteBelow on every queue and returns the total
// number of files removed.
func (s *Store) DeleteBelow(minPhys int64) (int, error) {
	var errs []error
	total := 0
	for _, q := range s.snapshot() {
		n, err := q.DeleteBelow(minPhys)
		total += n
		errs = append(errs, skipUnavailable(err))
	}
	return total, errors.Join(errs...)
}

// MaxPhysicalOffset is the largest Queue.MaxPhysicalOffset, or -1: recovery
// restarts dispatch from max(this, commit-log min offset).
func (s *Store) MaxPhysicalOffset() int64 {
	m := int64(-1)
	for _, q := range s.snapshot() {
		m = max(m, q.MaxPhysicalOffset())
	}
	return m
}

// Close flushes and syncs every queue and releases the files. Queue values
// return ErrClosed afterwards.
// A queue out of service is reported, and cut back to its durable entries
// (what a failed fdatasync may have left only in the page cache must not
// be read back as durable by the next run); its missing entries are
// restored by the next run's dispatch from the checkpoint.
func (s *Store) Close() error {
	errs := []error{s.Flush(0)}
	for _, q := range s.Broken() {
		errs = append(errs, q.Err())
		if _, err := q.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	s.closeQueues()
	return errors.Join(errs...)
}

func (s *Store) closeQueues() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for _, q := range s.snapshot() {
		q.close()
	}
}

// OpenFiles returns how many consume-queue files are open now and the most
// that were open at once (Config.MaxOpenFiles bounds both).
func (s *Store) OpenFiles() (open, peak int) { return s.files.stats() }
