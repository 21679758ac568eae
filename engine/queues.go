package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"github.com/mqd/mqd/consumequeue"
	"github.com/mqd/mqd/index"
	"github.com/mqd/mqd/internal/message"
)

// cqDispatcher appends consume-queue entries: only normal and committed
// transactional records get one (Java's ConsumeQueue). It is used by the
// dispatcher goroutine alone.
type cqDispatcher struct {
	cq *consumequeue.Store
	// recent holds queues recently put to, a slot per (topic, queue id)
	// hash, so that a record's queue is mostly found without the store's
	// lock and its two map lookups (issue 14: CPU per message). A slot is
	// trusted only when its queue's own topic and id match (the record's
	// topic string aliases log memory and is never kept). All are dropped
	// once a topic is deleted (deletions: its queues are closed one by one
	// after it leaves the store, and would take puts until then); a queue
	// closed all the same refuses with ErrClosed, and the put is then made
	// on the queue the store gives.
	recent    [cqRecentSlots]*consumequeue.Queue
	deletions uint64 // the store's Deletions when recent was last cleared
}

// cqRecentSlots is the size of cqDispatcher.recent: room for the queues of
// a few busy topics; with many topics most records miss it and pay what
// every record paid before it, plus a compare.
const cqRecentSlots = 1 << cqRecentBits

const cqRecentBits = 6

func (d *cqDispatcher) Dispatch(r *DispatchRequest) error {
	if t := r.SysFlag & message.FlagTransactionMask; t == message.FlagPrepared || t == message.FlagRollback {
		return nil
	}
	e := consumequeue.Entry{CommitLogOffset: r.PhysOffset, Size: r.Size, TagsCode: r.TagsCode}
	if n := d.cq.Deletions(); n != d.deletions {
		clear(d.recent[:])
		d.deletions = n
	}
	slot := &d.recent[recentSlot(r.Topic, r.QueueID)]
	if q := *slot; q != nil && q.ID() == int(r.QueueID) && q.Topic() == r.Topic {
		err := q.Put(r.QueueOffset, e)
		if !errors.Is(err, consumequeue.ErrClosed) {
			return cqPutResult(err)
		}
		*slot = nil // its topic was deleted: the store makes the queue again
	}
	q, err := d.cq.Queue(r.Topic, int(r.QueueID))
	if err != nil {
		return err
	}
	*slot = q
	return cqPutResult(q.Put(r.QueueOffset, e))
}

// cqPutResult is what a consume-queue put's error means for dispatch.
func cqPutResult(err error) error {
	if queueUnavailable(err) {
		return nil // out of service: rebuilt from the log later (cqrepair.go); the others go on
	}
	return err
}

// recentSlot spreads (topic, id) over cqDispatcher.recent: a topic's
// queues take consecutive slots from a start picked by a hash of the
// topic's length and first and last two bytes (where numbered topics
// differ).
func recentSlot(topic string, id int32) int {
	h := uint32(len(topic))
	if n := len(topic); n > 0 {
		h = h*31 + uint32(topic[0])
		h = h*31 + uint32(topic[max(n-2, 0)])
		h = h*31 + uint32(topic[n-1])
	}
	start := (h * 0x9e3779b1) >> (32 - cqRecentBits) // the top bits
	return int((start + uint32(id)) % cqRecentSlots)
}

// indexDispatcher indexes topic#UNIQ_KEY and topic#<each KEYS token>;
// rolled-back records are skipped (Java's IndexService.buildIndex). When the index cannot take
// a key (a new index file cannot be created: disk full), indexing stops at
// that record instead of stalling dispatch for every queue: lost records
// where, the checkpoint and retention stay below it, and the dispatcher
// indexes the range again once the index works (reindex).
type indexDispatcher struct {
	idx  *index.Service
	keys []string
	lost atomic.Int64 // commit-log offset from which keys are missing; -1: none
	log  *slog.Logger
}

func newIndexDispatcher(idx *index.Service, log *slog.Logger) *indexDispatcher {
	d := &indexDispatcher{idx: idx, log: log}
	d.lost.Store(-1)
	return d
}

func (d *indexDispatcher) Dispatch(r *DispatchRequest) error {
	if d.lost.Load() >= 0 {
		return nil // in commit-log order or not at all: reindex catches up
	}
	if err := d.put(r); err != nil {
		d.lost.Store(r.PhysOffset)
		d.log.Error("engine: indexing failed; keys from here are indexed again once the index works",
			"offset", r.PhysOffset, "err", err)
	}
	return nil
}

func (d *indexDispatcher) put(r *DispatchRequest) error {
	if r.SysFlag&message.FlagTransactionMask == message.FlagRollback {
		return nil
	}
	d.keys = index.AppendKeys(d.keys[:0], r.UniqKey, r.Keys)
	if len(d.keys) == 0 {
		return nil
	}
	return d.idx.Put(r.Topic, d.keys, r.PhysOffset, r.StoreTimestamp)
}

// openQueues opens the consume queues and the index and brings them in line
// with the recovered commit log (Java's DefaultMessageStore.load): consume-queue entries past the
// log end are cut, files below the log start removed; after an abnormal
// exit, index files that may point past the log end are dropped. It returns
// where dispatch must start so that every record missing from them is
// dispatched again (dispatch is idempotent).
func (s *Store) openQueues(clean bool) (int64, error) {
	var err error
	s.cq, err = consumequeue.Open(s.fs, s.path("consumequeue"), consumequeue.Config{
		EntriesPerFile: s.cfg.ConsumeQueueEntriesPerFile, MaxOpenFiles: s.cfg.MaxOpenConsumeQueueFiles})
	if err != nil {
		return 0, fmt.Errorf("engine: consume queues: %w", err)
	}
	end, minOff := s.cl.Tail(), s.cl.MinOffset()
	if err := s.cq.TruncateDirty(end); err != nil {
		return 0, err
	}
	if _, err := s.cq.DeleteBelow(minOff); err != nil {
		return 0, err
	}
	s.idx, err = index.Open(s.fs, filepath.Join(s.cfg.Dir, "index"), index.Config{
		MaxHashSlotNum: s.cfg.MaxHashSlotNum, MaxIndexNum: s.cfg.MaxIndexNum, Reaper: s.cl.Reaper()})
	if err != nil {
		return 0, fmt.Errorf("engine: index: %w", err)
	}
	from := s.cp.last.DispatchedOffset
	if !clean {
		from = min(max(from, minOff), end)
		// Index pages written after the last msync may be torn (a header
		// ahead of lost entries, slots pointing at them) or point past a
		// log that lost its unsynced tail: keep exactly the entries of the
		// records below from (msynced before the checkpoint said so) and
		// rebuild their chains; the redispatch from there indexes the rest.
		n, err := s.idx.RecoverFrom(from)
		if err != nil {
			return 0, fmt.Errorf("engine: index recovery: %w", err)
		}
		if n > 0 {
			s.log.Warn("engine: index entries after the durable point dropped; they are indexed again", "entries", n, "from", from)
		}
		if err := s.cutUnverifiedEntries(from); err != nil {
			return 0, err
		}
	}
	return min(max(from, minOff), end), nil
}

// cutUnverifiedEntries removes, after a crash, every consume-queue entry
// that recovery dispatch from `from` will write again or that does not
// point at its own record. Entries written since the last sync may be torn
// (a 20-byte entry can straddle a sector), and a torn entry can look valid
// by its fields alone; so each queue is walked back from its tail, checking
// each entry against the commit-log record it names, down to the first
// correct entry below `from` — everything below that was synced before the
// checkpoint vouched for `from`.
func (s *Store) cutUnverifiedEntries(from int64) error {
	var buf []byte
	for _, topic := range s.cq.Topics() {
		for _, id := range s.cq.QueueIDs(topic) {
			q, ok := s.cq.Lookup(topic, id)
			if !ok {
				continue
			}
			c := q.MaxOffset()
			for ; c > q.MinOffset(); c-- {
				e, err := q.Get(c - 1)
				if err == nil && e.CommitLogOffset < from && s.entryMatches(e, topic, int32(id), c-1, &buf) {
					break
				}
			}
			if err := q.TruncateTo(c); err != nil {
				return fmt.Errorf("engine: recovering consume queue %s/%d: %w", topic, id, err)
			}
		}
	}
	return nil
}

// entryMatches reports whether e points at the record of (topic, queue,
// queueOffset).
func (s *Store) entryMatches(e consumequeue.Entry, topic string, queue int32, queueOffset int64, buf *[]byte) bool {
	rec, err := s.cl.ReadVerified(e.CommitLogOffset, e.Size, *buf)
	if err != nil {
		return false
	}
	*buf = rec
	v, err := message.Parse(rec)
	return err == nil && len(v.Raw) == int(e.Size) && v.QueueID == queue && v.QueueOffset == queueOffset && v.TopicString() == topic
}

// queueOffsetsFromConsumeQueues sets every queue's next offset from its
// consume queue once recovery dispatch has caught up.
func (s *Store) queueOffsetsFromConsumeQueues() {
	for _, topic := range s.cq.Topics() {
		for _, id := range s.cq.QueueIDs(topic) {
			if q, ok := s.cq.Lookup(topic, id); ok {
				s.offsets.observe(topic, int32(id), q.MaxOffset()-1)
			}
		}
	}
}
