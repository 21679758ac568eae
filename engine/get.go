package engine

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mqd/mqd/commitlog"
	"github.com/mqd/mqd/consumequeue"
	"golang.org/x/sys/unix"
)

// GetStatus is RocketMQ's GetMessageStatus.
type GetStatus int

// Get statuses.
const (
	Found GetStatus = iota
	NoMatchedMessage
	MessageWasRemoving
	OffsetFoundNull
	OffsetOverflowBadly
	OffsetOverflowOne
	OffsetTooSmall
	NoMatchedLogicQueue
	NoMessageInQueue
	// StoreReadError is ours (Java has no such status): the queue cannot be
	// read right now — its consume queue failed a write or sync and is being
	// rebuilt, or the next record failed its checksum. GetResult.Err says
	// which; the pull is answered SYSTEM_ERROR with that remark and the
	// consumer's offset does not move past the record.
	StoreReadError
)

var getStatusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "MESSAGE_WAS_REMOVING", "OFFSET_FOUND_NULL",
	"OFFSET_OVERFLOW_BADLY", "OFFSET_OVERFLOW_ONE", "OFFSET_TOO_SMALL", "NO_MATCHED_LOGIC_QUEUE", "NO_MESSAGE_IN_QUEUE",
	"STORE_READ_ERROR"}

func (s GetStatus) String() string { return getStatusNames[s] }

// MessageFilter selects messages for a pull. MatchTagsCode sees the
// consume-queue entry's tag hash before the commit log is touched;
// MatchRecord (the broker's exact check, e.g. tag strings or SQL92) sees
// the record bytes.
type MessageFilter interface {
	MatchTagsCode(tagsCode int64) bool
	MatchRecord(record []byte) bool
}

// Transfer limits per pull (Java's PullMessageProcessor, maxTransfer* settings).
const (
	maxBytesInMemory = 256 << 10
	maxCountInMemory = 32
	maxBytesOnDisk   = 64 << 10
	maxCountOnDisk   = 8
	minScanEntries   = 16000 / consumequeue.EntrySize
	// maxPullMessages caps a pull's maxMsgNums (a client field): the byte
	// and count limits above stop a batch long before, but the consume-queue
	// scan is sized by it.
	maxPullMessages = 1024
)

// GetResult is a pull's answer. Messages are raw records, each exactly as
// stored (Java's MessageDecoder.decodes); records still in memory are not copied, so Release
// must be called once the caller has sent them.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	Messages        [][]byte
	TotalSize       int
	// SuggestSlave: the consumer is far behind (more than 40% of RAM), the
	// Java broker's hint to read from a slave.
	SuggestSlave bool
	// Err is the reason of a StoreReadError.
	Err     error
	refs    []commitlog.Ref
	entries []consumequeue.Entry
	// win holds log bytes [winAt, winAt+len(win)) read from a file for
	// records no longer in memory: one read serves the neighbours of a
	// pull instead of one pread each. Messages alias it.
	win   []byte
	winAt int64
}

// pullWindow is how much of the log one cold read brings in.
const pullWindow = 256 << 10

var getResultPool = sync.Pool{New: func() any { return new(GetResult) }}

// Release returns held memory; the result must not be used afterwards.
func (r *GetResult) Release() {
	for _, ref := range r.refs {
		ref.Release()
	}
	clear(r.Messages)
	*r = GetResult{Messages: r.Messages[:0], refs: r.refs[:0], entries: r.entries[:0]} // win is dropped: messages sent may still alias it
	if cap(r.entries) > 4*maxPullMessages {
		r.entries = nil // do not pin an unusually large scan in the pool
	}
	getResultPool.Put(r)
}

// GetMessage reads up to maxMsgNums messages of (topic, queueID) from
// offset that pass filter (nil = all), following DefaultMessageStore's
// rules: at least one message when any matches (even for maxMsgNums 0), at
// most 256 KiB / 32 messages from memory or 64 KiB / 8 from disk, and at
// most max(800, maxMsgNums) consume-queue entries scanned.
func (s *Store) GetMessage(topic string, queueID int32, offset int64, maxMsgNums int, filter MessageFilter) *GetResult {
	r := getResultPool.Get().(*GetResult)
	r.NextBeginOffset = offset
	q, ok := s.cq.Lookup(topic, int(queueID))
	if !ok {
		r.Status = NoMatchedLogicQueue
		r.NextBeginOffset = 0
		return r
	}
	r.MinOffset, r.MaxOffset = q.MinOffset(), q.MaxOffset()
	if err := q.Err(); err != nil { // out of service until rebuilt (cqrepair.go)
		r.Status, r.Err = StoreReadError, err
		return r
	}
	switch {
	case r.MaxOffset == 0:
		r.Status, r.NextBeginOffset = NoMessageInQueue, 0
	case offset < r.MinOffset:
		r.Status, r.NextBeginOffset = OffsetTooSmall, r.MinOffset
	case offset == r.MaxOffset:
		r.Status = OffsetOverflowOne
	case offset > r.MaxOffset:
		r.Status, r.NextBeginOffset = OffsetOverflowBadly, r.MaxOffset
		if r.MinOffset == 0 {
			r.NextBeginOffset = 0
		}
	default:
		s.scan(r, q, offset, maxMsgNums, filter)
	}
	return r
}

// scan walks consume-queue entries from offset and collects messages.
func (s *Store) scan(r *GetResult, q *consumequeue.Queue, offset int64, maxMsgNums int, filter MessageFilter) {
	var err error
	maxMsgNums = min(maxMsgNums, maxPullMessages)
	r.entries, err = q.Read(offset, max(minScanEntries, maxMsgNums), r.entries[:0])
	if queueUnavailable(err) {
		r.Status, r.Err = StoreReadError, err
		return
	}
	if len(r.entries) == 0 {
		r.Status = OffsetFoundNull
		if errors.Is(err, consumequeue.ErrBelowMin) {
			r.NextBeginOffset = q.MinOffset()
		}
		return
	}
	r.Status = NoMatchedMessage
	maxPhys := s.cl.Tail()
	i := 0
	for ; i < len(r.entries); i++ {
		e := r.entries[i]
		inMem := s.cl.InMemory(e.CommitLogOffset)
		if s.batchFull(r, int(e.Size), maxMsgNums, inMem) {
			break
		}
		if filter != nil && !filter.MatchTagsCode(e.TagsCode) {
			continue
		}
		rec, ref, err := s.readForPull(r, e, r.spanEnd(i, maxMsgNums))
		if errors.Is(err, commitlog.ErrChecksum) {
			// never skip it: the pull ends before it, and a pull that
			// starts at it fails, so the consumer does not move past it
			if len(r.Messages) == 0 {
				r.Status, r.Err = StoreReadError, err
			}
			break
		}
		if err != nil {
			if len(r.Messages) == 0 {
				r.Status = MessageWasRemoving
			}
			continue
		}
		if filter != nil && !filter.MatchRecord(rec) {
			ref.Release()
			continue
		}
		r.Messages = append(r.Messages, rec)
		r.refs = append(r.refs, ref)
		r.TotalSize += len(rec)
		r.Status = Found
	}
	r.NextBeginOffset = offset + int64(i)
	last := r.entries[max(i-1, 0)].CommitLogOffset
	r.SuggestSlave = maxPhys-last > memoryBudget()
}

func (s *Store) batchFull(r *GetResult, size, maxMsgNums int, inMem bool) bool {
	n := len(r.Messages)
	if n == 0 {
		return false
	}
	if maxMsgNums <= n {
		return true
	}
	if inMem {
		return r.TotalSize+size > maxBytesInMemory || n >= maxCountInMemory
	}
	return r.TotalSize+size > maxBytesOnDisk || n >= maxCountOnDisk
}

// spanEnd is where the records this pull may still return, from entry i
// on, end in the log (within pullWindow of entry i): the extent of one
// read that serves them all.
func (r *GetResult) spanEnd(i, maxMsgNums int) int64 {
	start := r.entries[i].CommitLogOffset
	end := start + int64(r.entries[i].Size)
	left := min(maxMsgNums, maxCountOnDisk) - len(r.Messages)
	for k := i + 1; k < len(r.entries) && k-i < left; k++ {
		e := r.entries[k]
		if e.CommitLogOffset < start || e.CommitLogOffset+int64(e.Size)-start > pullWindow {
			break
		}
		end = max(end, e.CommitLogOffset+int64(e.Size))
	}
	return end
}

// readForPull returns the record of e: without a copy when it is in
// memory, else from r's read window, reading [e, spanEnd) and the last
// record's trailer when the window does not hold it. A record read from a
// file is served only when it matches its CRC-32C trailer (which follows
// it in the window): bytes the disk changed are never sent.
func (s *Store) readForPull(r *GetResult, e consumequeue.Entry, spanEnd int64) ([]byte, commitlog.Ref, error) {
	phys, size := e.CommitLogOffset, int64(e.Size)
	if b, ref, ok := s.cl.View(phys, e.Size); ok {
		return b, ref, nil
	}
	frame := size + commitlog.TrailerSize
	if phys < r.winAt || phys+frame > r.winAt+int64(len(r.win)) {
		seg := s.cl.SegmentSize()
		n := max(min(spanEnd+commitlog.TrailerSize-phys, phys-phys%seg+seg-phys, s.cl.Written()-phys), frame)
		b, err := s.cl.ReadRecord(phys, int32(n), nil)
		if err != nil {
			return nil, commitlog.Ref{}, err
		}
		r.win, r.winAt = b, phys
	}
	off := phys - r.winAt
	if err := commitlog.CheckRecord(r.win[off:off+frame], phys); err != nil {
		s.log.Error("engine: refusing to serve a damaged record", "err", err)
		return nil, commitlog.Ref{}, err
	}
	return r.win[off : off+size : off+size], commitlog.Ref{}, nil
}

var memBudget = sync.OnceValue(func() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 1 << 62
	}
	return int64(si.Totalram) * int64(si.Unit) * 40 / 100 // accessMessageInMemoryMaxRatio
})

func memoryBudget() int64 { return memBudget() }

// MaxOffsetInQueue is the next logical offset of the queue (0 if unknown).
func (s *Store) MaxOffsetInQueue(topic string, queueID int32) int64 {
	if q, ok := s.cq.Lookup(topic, int(queueID)); ok {
		return q.MaxOffset()
	}
	return 0
}

// MinOffsetInQueue is the smallest logical offset still stored.
func (s *Store) MinOffsetInQueue(topic string, queueID int32) int64 {
	if q, ok := s.cq.Lookup(topic, int(queueID)); ok {
		return q.MinOffset()
	}
	return 0
}

// OffsetInQueueByTime is SEARCH_OFFSET_BY_TIMESTAMP.
func (s *Store) OffsetInQueueByTime(topic string, queueID int32, ts int64) (int64, error) {
	q, ok := s.cq.Lookup(topic, int(queueID))
	if !ok {
		return 0, nil
	}
	return q.SearchOffsetByTime(ts, s.storeTimeAt)
}

// storeTimeAt reads a record's STORETIMESTAMP.
func (s *Store) storeTimeAt(phys int64, size int32) (int64, error) {
	b, ref, ok := s.cl.View(phys, size)
	if !ok {
		var err error
		if b, err = s.cl.ReadVerified(phys, size, nil); err != nil {
			return -1, err
		}
	}
	defer ref.Release()
	return storeTimestampOf(b)
}

// MessageStoreTime is the store time of the message at (topic, queue, offset).
func (s *Store) MessageStoreTime(topic string, queueID int32, offset int64) (int64, error) {
	q, ok := s.cq.Lookup(topic, int(queueID))
	if !ok {
		return -1, fmt.Errorf("engine: no queue %s/%d", topic, queueID)
	}
	e, err := q.Get(offset)
	if err != nil {
		return -1, err
	}
	return s.storeTimeAt(e.CommitLogOffset, e.Size)
}

// EarliestMessageTime is GET_EARLIEST_MSG_STORETIME: the store time at the
// queue's min offset, -1 when unknown.
func (s *Store) EarliestMessageTime(topic string, queueID int32) int64 {
	ts, err := s.MessageStoreTime(topic, queueID, s.MinOffsetInQueue(topic, queueID))
	if err != nil {
		return -1
	}
	return ts
}
