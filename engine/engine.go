// Package engine is the store facade the broker talks to: it opens and
// recovers the store directory, puts messages into the commit log under the
// configured flush policy, reads them back, and follows the commit log with
// a dispatch loop that feeds consume queues and the index.
//
// Directory layout (Java's StoreCheckpoint and DefaultMessageStore): <Dir>/commitlog/, <Dir>/consumequeue/,
// <Dir>/index/, <Dir>/checkpoint, <Dir>/abort, <Dir>/lock.
//
// Goroutines: the commit log runs its flush and preallocation goroutines
// (see package commitlog). The engine adds the dispatch loop, which alone
// calls the registered Dispatchers in commit-log order, and the checkpoint
// loop, which alone writes the checkpoint file while the store is open.
// PutMessage and the read methods may be called from any goroutine.
package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/commitlog"
	"github.com/mqd/mqd/consumequeue"
	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/index"
	"github.com/mqd/mqd/internal/vfs"
)

// FlushDiskType is RocketMQ's flushDiskType.
type FlushDiskType string

// Flush types.
const (
	SyncFlush  FlushDiskType = "SYNC_FLUSH"
	AsyncFlush FlushDiskType = "ASYNC_FLUSH"
)

// DefaultSyncFlushMinGapFromTps is a broker's default for
// syncFlushMinGapFromTps (broker.NewConfig; README "Group commit"). The
// gap itself is off by default (BENCHMARKS.md, session 17: it costs
// synchronous senders throughput).
const DefaultSyncFlushMinGapFromTps = 60_000

// Config configures a Store. Zero values take RocketMQ's defaults.
type Config struct {
	Dir                    string        // storePathRootDir
	FlushDiskType          FlushDiskType // default ASYNC_FLUSH
	SyncFlushTimeout       time.Duration // 5 s
	SyncFlushMinGap        time.Duration // syncFlushMinGapMicros (mqd only; flush.Sync.MinGap), 0
	SyncFlushMinGapFromTps int           // syncFlushMinGapFromTps (mqd only; flush.Sync.GapFromRate), 0 here, DefaultSyncFlushMinGapFromTps in a broker
	FlushInterval          time.Duration // flushIntervalCommitLog, 500 ms
	FlushLeastPages        int           // flushCommitLogLeastPages, 4
	FlushThoroughInterval  time.Duration // flushCommitLogThoroughInterval, 10 s
	// FlushMaxDirty (flushCommitLogMaxDirtyBytes, mqd only) starts an
	// ASYNC_FLUSH sync once this many bytes are written unsynced
	// (flush.Async.MaxDirty): 0 takes flush.DefaultAsync's 4 MiB (or
	// flushCommitLogLeastPages' bytes when more), a negative value none.
	FlushMaxDirty           int64
	MappedFileSizeCommitLog int64 // 1 GiB
	MaxMessageSize          int   // 4 MiB
	// IOBackend is "auto" (io_uring when available), "io_uring" or "pwrite".
	IOBackend string
	// CommitLogMaxWrite caps one write of the commit log's flush loop
	// (default 1 MiB; see commitlog.Config.MaxWrite). Records larger than it
	// are written in several pieces. Tests make it small.
	CommitLogMaxWrite int64
	// BufferedIO writes the commit log through the page cache instead of
	// O_DIRECT under SYNC_FLUSH too (measured alternative; O_DIRECT is
	// SYNC_FLUSH's default, the page cache ASYNC_FLUSH's:
	// commitlog.Config.BufferedIO).
	BufferedIO bool
	// CheckpointInterval is how often the durable offset is checkpointed.
	CheckpointInterval time.Duration // 1 s
	// ConsumeQueueEntriesPerFile is mappedFileSizeConsumeQueue / 20 (300 000).
	ConsumeQueueEntriesPerFile int
	// MaxOpenConsumeQueueFiles (maxOpenConsumeQueueFiles, mqd only) bounds
	// the consume-queue files open at once; 0 means
	// consumequeue.DefaultMaxOpenFiles() (half of RLIMIT_NOFILE, at most
	// 65 536), negative means no bound (consumequeue/files.go).
	MaxOpenConsumeQueueFiles int
	// MaxHashSlotNum and MaxIndexNum size index files (5 000 000 / 20 000 000).
	MaxHashSlotNum, MaxIndexNum int
	// QueueFlushThoroughInterval is how often consume queues and the index
	// are made durable and the dispatched offset checkpointed (10 s);
	// after a crash, at most this much of the log is dispatched again.
	QueueFlushThoroughInterval time.Duration
	// Retention is the file-deletion policy.
	Retention RetentionConfig
	// Dispatchers receive every record in commit-log order (the consume
	// queues and the index plug in here).
	Dispatchers []Dispatcher
	// DelayLevels is messageDelayLevel (delay.go); default Java's 18 levels.
	DelayLevels []time.Duration
	// FS overrides the file layer (tests use crashfs); IOBackend is then ignored.
	FS     vfs.FS
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.FlushDiskType == "" {
		c.FlushDiskType = AsyncFlush
	}
	if c.SyncFlushTimeout == 0 {
		c.SyncFlushTimeout = 5 * time.Second
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 500 * time.Millisecond
	}
	if c.FlushLeastPages == 0 {
		c.FlushLeastPages = 4
	}
	if c.FlushThoroughInterval == 0 {
		c.FlushThoroughInterval = 10 * time.Second
	}
	if c.MappedFileSizeCommitLog == 0 {
		c.MappedFileSizeCommitLog = 1 << 30
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 4 << 20
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.QueueFlushThoroughInterval == 0 {
		c.QueueFlushThoroughInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Retention.defaults()
	c.delayDefaults()
}

// MaxDirtyBytes is the unsynced bytes at which an ASYNC_FLUSH sync starts
// (flush.Async.MaxDirty; 0: none), FlushMaxDirty with its default applied.
func (c *Config) MaxDirtyBytes() int64 { return c.maxDirty() }

func (c *Config) maxDirty() int64 {
	switch {
	case c.FlushMaxDirty < 0:
		return 0 // none
	case c.FlushMaxDirty > 0:
		return c.FlushMaxDirty
	}
	return max(flush.DefaultAsync.MaxDirty, int64(c.FlushLeastPages)*4096)
}

// policy turns the configured flush type into the policy value: the one
// place that reads the flush-type name. Everything after asks the policy.
func (c *Config) policy() (flush.Policy, error) {
	switch c.FlushDiskType {
	case SyncFlush:
		if g := c.SyncFlushMinGap; g < 0 || (g > 0 && g >= c.SyncFlushTimeout) {
			return nil, fmt.Errorf("engine: syncFlushMinGapMicros %d: want 0 or more, and below syncFlushTimeout (%v)", g.Microseconds(), c.SyncFlushTimeout)
		}
		if c.SyncFlushMinGapFromTps < 0 {
			return nil, fmt.Errorf("engine: syncFlushMinGapFromTps %d: want 0 or more", c.SyncFlushMinGapFromTps)
		}
		return flush.Sync{Timeout: c.SyncFlushTimeout, MinGap: c.SyncFlushMinGap, GapFromRate: float64(c.SyncFlushMinGapFromTps)}, nil
	case AsyncFlush:
		return flush.Async{Interval: c.FlushInterval, LeastBytes: int64(c.FlushLeastPages) * 4096, Thorough: c.FlushThoroughInterval,
			MaxDirty: c.maxDirty(), Timeout: c.SyncFlushTimeout}, nil
	}
	return nil, fmt.Errorf("engine: flushDiskType %q: want %s or %s", c.FlushDiskType, SyncFlush, AsyncFlush)
}

// CheckPolicy reports whether the flush settings, with defaults applied,
// make a flush policy: what Open would refuse (for a configuration
// accepted before a restart).
func (c Config) CheckPolicy() error {
	c.defaults()
	_, err := c.policy()
	return err
}

// Store is an open message store.
type Store struct {
	cfg     Config
	fs      vfs.FS
	ownFS   bool
	log     *slog.Logger
	cl      *commitlog.Log
	cq      *consumequeue.Store
	idx     *index.Service
	cp      *checkpointFile
	policy  flush.Policy // from Config.FlushDiskType, fixed at Open
	wait    flush.Wait   // what a put waits for unless its producer says not to
	lock    interface{ Close() error }
	offsets *queueOffsets // offsets.go: the offsets are guarded by the commit log's append lock

	disk     diskState
	dispatch *dispatcher
	stop     chan struct{}
	adv      advance       // replica.go: broadcast on every log advance
	replica  ReplicaWaiter // replica.go: SYNC_MASTER's wait for a slave
	rg       replicaGroups // replica_group.go: the open group of puts awaiting it
	slave    bool          // replica.go: refuse puts
	fenced   atomic.Bool   // replica.go: refuse puts while fenced
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
}

// ErrCorrupt is returned (wrapped) by Open when the commit log holds
// corruption it will not silently drop; see commitlog.CorruptionError.
var ErrCorrupt = errors.New("engine: store is corrupt")

// Open opens (creating if needed) and recovers the store in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	cfg.defaults()
	policy, err := cfg.policy()
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), offsets: newQueueOffsets(), policy: policy, wait: policy.Wait()}
	if err := s.openFS(); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		if s.cl != nil {
			s.cl.Close()
		}
		s.release()
		return nil, err
	}
	if err := s.RunRetention(); err != nil {
		s.log.Error("engine: retention failed", "err", err)
	}
	s.wg.Add(2)
	go s.checkpointLoop()
	go s.retentionLoop()
	return s, nil
}

func (s *Store) openFS() error {
	if s.cfg.FS != nil {
		s.fs = s.cfg.FS
		return s.fs.MkdirAll(s.cfg.Dir)
	}
	fsys, err := vfs.Open(vfs.Config{Backend: s.cfg.IOBackend}, s.log)
	if err != nil {
		return err
	}
	s.fs, s.ownFS = fsys, true
	if err := s.fs.MkdirAll(s.cfg.Dir); err != nil {
		return err
	}
	lock, err := vfs.LockDir(filepath.Join(s.cfg.Dir, "lock"))
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	s.lock = lock
	return nil
}

func (s *Store) path(name string) string { return filepath.Join(s.cfg.Dir, name) }

// recoveryHint is what the checkpoint tells the commit log's recovery.
// After a clean shutdown the scan only confirms the end; after a crash it
// starts at the dispatched offset, so the records recovery dispatches again
// are validated too, and any invalid one below the durable offset is
// reported as corruption instead of being cut as a torn tail.
func recoveryHint(c checkpoint, clean bool) commitlog.Hint {
	h := commitlog.Hint{Clean: clean, Offset: c.PhysicOffset, Durable: c.PhysicOffset, Timestamp: c.PhysicTimestamp,
		Writer: commitlog.Writer{Mode: c.FlushMode, MaxWrite: c.MaxWrite}}
	if !clean {
		h.Offset = min(c.DispatchedOffset, c.PhysicOffset)
	}
	return h
}

// open recovers: the abort file tells whether the last run ended cleanly,
// the checkpoint where to start scanning; then the abort file is created
// for this run (and synced) before any append can happen.
func (s *Store) open() error {
	var err error
	if s.cp, err = openCheckpoint(s.fs, s.path("checkpoint")); err != nil {
		return err
	}
	_, statErr := s.fs.Stat(s.path("abort"))
	clean := vfs.IsNotExist(statErr)
	hint := recoveryHint(s.cp.last, clean && s.cp.last.seq > 0)
	s.cl, err = commitlog.Open(s.fs, commitlog.Config{
		Dir: s.path("commitlog"), SegmentSize: s.cfg.MappedFileSizeCommitLog, Policy: s.policy,
		MaxWrite: s.cfg.CommitLogMaxWrite, Recovery: hint, Logger: s.log, Prefault: s.cfg.FS == nil, BufferedIO: s.cfg.BufferedIO,
		Fallocate: !s.policy.Durable(), // see commitlog.Config.Fallocate
	})
	var ce *commitlog.CorruptionError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %w; nothing was changed. To keep the log before the bad record and move the rest aside (a .broken copy is kept), stop mqd and run: mqd repair --store %s --truncate-at %d",
			ErrCorrupt, err, s.cfg.Dir, ce.Offset)
	}
	if err != nil {
		return err
	}
	if !clean {
		s.log.Warn("engine: previous run did not shut down cleanly; recovered", "commitlogEnd", s.cl.Tail(), "checkpointOffset", hint.Offset)
	}
	from, err := s.openQueues(clean)
	if err != nil {
		return err
	}
	targets := append([]Dispatcher{&cqDispatcher{cq: s.cq}, newIndexDispatcher(s.idx, s.log)}, s.cfg.Dispatchers...)
	s.dispatch = newDispatcher(s, from, targets)
	s.dispatch.drain() // catch up before the store is shared
	if !s.dispatch.caughtUp() {
		return fmt.Errorf("engine: recovery dispatch stopped at %d of %d", s.dispatch.done.Load(), s.cl.Tail())
	}
	s.queueOffsetsFromConsumeQueues()
	// Make what recovery rebuilt durable before anything depends on it: a
	// second crash must not find the checkpoint vouching for queue and
	// index entries that only lived in memory.
	if err := s.checkpoint(true); err != nil {
		return err
	}
	if err := s.createAbortFile(); err != nil {
		return err
	}
	s.cl.OnAdvance(func() { s.dispatch.kick(); s.adv.fire() })
	s.wg.Add(1)
	go s.dispatch.loop()
	return nil
}

func (s *Store) createAbortFile() error {
	f, err := s.fs.Open(s.path("abort"), vfs.Create)
	if err != nil {
		return fmt.Errorf("engine: create abort file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	return s.fs.SyncDir(s.cfg.Dir)
}

// checkpointLoop records the durable offset every CheckpointInterval and
// writes consume-queue entries out (syncing queues with 2+ dirty pages);
// every QueueFlushThoroughInterval it makes the queues and the index
// durable and only then advances the checkpoint's dispatched offset.
func (s *Store) checkpointLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	lastThorough := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		thorough := time.Since(lastThorough) >= s.cfg.QueueFlushThoroughInterval
		if thorough {
			lastThorough = time.Now()
		}
		s.checkDisk()
		if err := s.checkpoint(thorough); err != nil {
			s.log.Error("engine: checkpoint failed", "err", err)
		}
	}
}

// checkpoint writes the checkpoint; thorough also syncs queues and index
// and advances the dispatched offset to what they now durably hold.
func (s *Store) checkpoint(thorough bool) error {
	c := s.cp.last
	w := s.cl.Writer() // recorded before this run's first append (open)
	c.FlushMode, c.MaxWrite = w.Mode, w.MaxWrite
	c.PhysicOffset = s.cl.Durable()
	c.PhysicTimestamp = s.cl.DurableTimestamp()
	if !thorough {
		if err := s.cq.Flush(2); err != nil {
			return err
		}
	} else {
		d := s.dispatch.progress() // before the flushes: everything below is in them
		if err := s.cq.Flush(0); err != nil {
			return err
		}
		ts, err := s.idx.Flush()
		if err != nil {
			return err
		}
		if ts > 0 {
			c.IndexTimestamp = ts
		}
		c.DispatchedOffset = min(d.offset, c.PhysicOffset)
		c.LogicsTimestamp = d.timestamp
	}
	if c == s.cp.last {
		return nil
	}
	return s.cp.write(c)
}

// Close stops dispatch, flushes and syncs the commit log, writes the final
// checkpoint and removes the abort file, in that order, so that the next
// Open takes the fast clean path only if all of it happened.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	s.wg.Wait()
	s.dispatch.limit.f.Store(nil) // dispatchlimit.go: the final dispatch takes the whole log
	err := s.cl.Flush()
	if err == nil {
		s.dispatch.drain() // dispatch what the final flush made visible
		err = s.checkpoint(true)
		if err == nil && s.cp.last.seq == 0 {
			err = s.cp.write(s.cp.last) // an empty store: record the clean end anyway
		}
	}
	clErr := s.cl.Close()
	if err == nil && clErr == nil && s.dispatch.caughtUp() {
		err = s.fs.Remove(s.path("abort"))
		if err == nil {
			err = s.fs.SyncDir(s.cfg.Dir)
		}
	}
	s.release()
	return errors.Join(clErr, err)
}

func (s *Store) release() {
	if s.cq != nil {
		s.cq.Close()
	}
	if s.idx != nil {
		s.idx.Close()
	}
	if s.cp != nil {
		s.cp.close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
	if s.ownFS {
		s.fs.Close()
	}
}

// AwaitNextSegment waits, up to 30 s, until the commit log's next segment
// is prepared (commitlog.Log.AwaitNext). The broker calls it before it
// listens, so the preparation Open started does not compete with the first
// appends.
func (s *Store) AwaitNextSegment() error { return s.cl.AwaitNext(30 * time.Second) }
