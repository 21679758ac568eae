package engine

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mqd/mqd/commitlog"
	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
)

// PutStatus is RocketMQ's PutMessageStatus.
type PutStatus int

// Put statuses.
const (
	PutOK PutStatus = iota
	FlushDiskTimeout
	FlushSlaveTimeout
	SlaveNotAvailable
	ServiceNotAvailable
	CreateMappedFileFailed
	MessageIllegal
	PropertiesSizeExceeded
	OSPageCacheBusy
	UnknownError
	// InSyncReplicasNotEnough (controller mode, replica.go): the in-sync
	// set is below minInSyncReplicas; the put is refused unwritten.
	InSyncReplicasNotEnough
)

var statusNames = [...]string{"PUT_OK", "FLUSH_DISK_TIMEOUT", "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE",
	"SERVICE_NOT_AVAILABLE", "CREATE_MAPPED_FILE_FAILED", "MESSAGE_ILLEGAL", "PROPERTIES_SIZE_EXCEEDED",
	"OS_PAGE_CACHE_BUSY", "UNKNOWN_ERROR", "IN_SYNC_REPLICAS_NOT_ENOUGH"}

func (s PutStatus) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("PutStatus(%d)", int(s))
}

// Stored reports whether the message is in the log (the statuses RocketMQ
// answers with a non-error send result).
func (s PutStatus) Stored() bool { return s <= SlaveNotAvailable }

// PutResult is the outcome of a put. For a batch, Offset/QueueOffset are
// those of the first message and Offsets lists every message's offset.
type PutResult struct {
	Status         PutStatus
	Err            error // detail for a failed status
	Offset         int64 // physical offset of the (first) record
	Size           int   // record size of a single put (TOTALSIZE)
	QueueOffset    int64
	StoreTimestamp int64
	Offsets        []int64 // every record's physical offset (batch puts)
}

// ErrDiskFull is the reason writes are refused above the disk warning ratio.
var ErrDiskFull = errors.New("engine: disk usage above the warning ratio (diskSpaceWarningLevelRatio); writes are refused until retention frees space")

// PutMessage appends one message and waits as the flush policy says
// (until durable under SYNC_FLUSH, until written under ASYNC_FLUSH).
func (s *Store) PutMessage(m *message.Message) PutResult {
	return s.put(nil, m, nil, s.wait, true)
}

// PutMessages appends a batch contiguously (one segment, consecutive queue
// offsets) and waits once for all of it, as the flush policy says.
func (s *Store) PutMessages(ms []*message.Message) PutResult {
	return s.PutMessagesWait(ms, true)
}

// PutMessageWait is PutMessage for a producer that may ask not to wait
// (RocketMQ's WAIT=false): with wait false it returns once the message is
// in the log's memory, under any policy (a crash of the process before
// the flush loop writes it loses it). The WAIT property itself is not
// consulted; the caller decides.
func (s *Store) PutMessageWait(m *message.Message, wait bool) PutResult {
	return s.PutTopicMessageWait(nil, m, wait)
}

// PutTopicMessageWait is PutMessageWait with m's topic's handle
// (Store.Topic; nil: looked up), as PutMessageAsync takes it.
func (s *Store) PutTopicMessageWait(t *Topic, m *message.Message, wait bool) PutResult {
	return s.put(nil, m, t, s.waitFor(wait), wait)
}

// PutMessagesWait is PutMessages with the producer's wait (see
// PutMessageWait).
func (s *Store) PutMessagesWait(ms []*message.Message, wait bool) PutResult {
	if len(ms) == 0 {
		return PutResult{Status: MessageIllegal, Err: errors.New("empty batch")}
	}
	return s.put(ms, nil, nil, s.waitFor(wait), wait)
}

func (s *Store) waitFor(wait bool) flush.Wait {
	if !wait {
		return flush.NoWait
	}
	return s.wait
}

// put appends batch, or the single message m (of topic handle t, or nil)
// when batch is nil, and waits as w says; when the producer waits (not
// WAIT=false), a SYNC_MASTER also waits for a slave (replica.go), whatever
// the flush policy.
func (s *Store) put(batch []*message.Message, m *message.Message, t *Topic, w flush.Wait, producerWaits bool) PutResult {
	req := getPutRequest(s, batch, m)
	req.topic = t
	defer putRequestPool.Put(req)
	if out, ok := s.admit(req, producerWaits); !ok {
		return out
	}
	res, err := s.cl.Append(req, w)
	out := req.outcome(res.StoreTimestamp, err)
	if !out.Status.Stored() {
		return out
	}
	s.waitReplica(&out, res.End, producerWaits) // replica.go
	if batch != nil {
		out.Offsets = append([]int64(nil), req.phys...)
	}
	return out
}

// admit checks a put before it is appended and computes its checksums; it
// returns false with the refusal.
func (s *Store) admit(req *putRequest, producerWaits bool) (PutResult, bool) {
	for _, m := range req.ms {
		if st, err := s.validate(m); err != nil {
			return PutResult{Status: st, Err: err}, false
		}
	}
	if s.disk.full.Load() {
		return PutResult{Status: ServiceNotAvailable, Err: ErrDiskFull}, false
	}
	if s.slave {
		return PutResult{Status: ServiceNotAvailable, Err: ErrSlaveStore}, false
	}
	if s.fenced.Load() {
		return PutResult{Status: ServiceNotAvailable, Err: ErrFenced}, false
	}
	if !s.enoughReplicas(producerWaits) { // replica.go
		return PutResult{Status: InSyncReplicasNotEnough, Err: ErrInSyncReplicasNotEnough}, false
	}
	req.checksum()
	return PutResult{}, true
}

// PutDone is told the result of an asynchronous put (PutMessageAsync)
// exactly once and must not block. It runs on the commit log's flush
// loop, a timer's goroutine, or, on a SYNC_MASTER, wherever the replica
// waiter answers (ReplicaDone).
type PutDone interface{ PutDone(PutResult) }

// PutWaits reports whether a put with this producer wait waits at all:
// for its write (ASYNC_FLUSH) or fdatasync (SYNC_FLUSH), or for a slave
// (SYNC_MASTER). A put that does not is answered as soon as it is in the
// log's memory.
func (s *Store) PutWaits(wait bool) bool {
	return wait && (s.wait != flush.NoWait || s.replica != nil)
}

// DefersPut reports whether PutMessageAsync with this wait answers later
// (unless it decides at once): the producer waits for the put's write or
// fdatasync, and on a SYNC_MASTER then for a slave whose waiter answers
// asynchronously (ReplicaAsyncWaiter). Otherwise it is PutMessageWait.
func (s *Store) DefersPut(wait bool) bool {
	if !wait || s.wait == flush.NoWait {
		return false
	}
	if s.replica == nil {
		return true
	}
	_, ok := s.replica.(ReplicaAsyncWaiter)
	return ok
}

// PutMessageAsync is PutMessageWait for a caller that does not want to
// block while the message becomes durable and replicated (issue 14: no
// goroutine waits per send). It returns the result and true when the put
// is complete: refused, stored without a wait (WAIT=false), or decided at
// once. Otherwise it returns false and done.PutDone gets the result once
// the message is written (ASYNC_FLUSH) or durable (SYNC_FLUSH) and, on a
// SYNC_MASTER, held by its slave (PutOK),
// after the policy's timeout (FlushDiskTimeout, FlushSlaveTimeout), or on
// a failure. m is encoded before it returns and not referred to after.
// t is m's topic's handle (Store.Topic), or nil: looked up.
func (s *Store) PutMessageAsync(t *Topic, m *message.Message, wait bool, done PutDone) (PutResult, bool) {
	if !s.DefersPut(wait) {
		return s.PutTopicMessageWait(t, m, wait), true
	}
	req := getPutRequest(s, nil, m)
	req.topic = t
	if out, ok := s.admit(req, wait); !ok {
		putRequestPool.Put(req)
		return out, true
	}
	req.done = done
	if _, err := s.cl.AppendAsync(req, s.wait, req); err != nil {
		req.recycle()
		return PutResult{Status: appendStatus(err), Err: err}, true
	}
	return PutResult{}, false // req belongs to the flush loop until Complete
}

// Complete is the commit log's answer to an asynchronous put
// (flush.Completer): the bytes below end are written or durable, as the
// policy waits (nil), or not known to be. A stored put of a SYNC_MASTER
// goes on to wait for its slave, in a group (replica_group.go).
func (r *putRequest) Complete(end int64, err error) {
	out := r.outcome(r.ts, err)
	if out.Status == PutOK && r.s.replica != nil {
		r.out = out
		r.s.awaitReplicaGrouped(r, end) // the group finishes r
		return
	}
	r.finish(out)
}

// finish hands an asynchronous put's result to its caller.
func (r *putRequest) finish(out PutResult) {
	done := r.done
	r.recycle()
	done.PutDone(out)
}

// recycle returns an asynchronous put's request to the pool, forgetting
// the caller's message and callback.
func (r *putRequest) recycle() {
	r.done, r.ms, r.one[0], r.out, r.topic = nil, nil, nil, PutResult{}, nil
	putRequestPool.Put(r)
}

// outcome is the result of an appended put whose wait ended with err:
// PutOK, FlushDiskTimeout (stored, durability unknown), or the log's
// failure.
func (r *putRequest) outcome(storeTS int64, err error) PutResult {
	switch {
	case err == nil:
		return r.result(storeTS)
	case errors.Is(err, flush.ErrTimeout):
		out := r.result(storeTS)
		out.Status, out.Err = FlushDiskTimeout, err
		return out
	}
	return PutResult{Status: appendStatus(err), Err: err}
}

// result is a stored single put's PutOK result, from what Encode recorded
// (the message itself may be reused once the append returned).
func (r *putRequest) result(storeTS int64) PutResult {
	out := PutResult{Status: PutOK, Offset: r.phys[0], QueueOffset: r.queueOffsets[0], StoreTimestamp: storeTS}
	if r.single {
		out.Size = r.size
	}
	return out
}

func appendStatus(err error) PutStatus {
	switch {
	case errors.Is(err, commitlog.ErrTooLarge):
		return MessageIllegal
	case errors.Is(err, commitlog.ErrSegment):
		return CreateMappedFileFailed
	default:
		return ServiceNotAvailable // sticky write/sync failure, closed store
	}
}

func (s *Store) validate(m *message.Message) (PutStatus, error) {
	if len(m.Body) > s.cfg.MaxMessageSize {
		return MessageIllegal, fmt.Errorf("%w: body of %d bytes exceeds maxMessageSize %d", message.ErrIllegal, len(m.Body), s.cfg.MaxMessageSize)
	}
	if len(m.Properties) > message.MaxPropertiesLen {
		return PropertiesSizeExceeded, fmt.Errorf("%w: properties of %d bytes exceed %d", message.ErrIllegal, len(m.Properties), message.MaxPropertiesLen)
	}
	if err := m.Validate(); err != nil {
		return MessageIllegal, err
	}
	// The consume queue stores a queue as <topic>/<queueId>: names that are
	// not a single path element, and negative queue ids, could never be
	// dispatched (the dispatcher would stall on them).
	if m.QueueID < 0 || m.Topic == "." || m.Topic == ".." || !pathSafe(m.Topic) {
		return MessageIllegal, fmt.Errorf("%w: topic %q / queue %d cannot be stored", message.ErrIllegal, m.Topic, m.QueueID)
	}
	return PutOK, nil
}

// pathSafe reports whether topic has neither '/' nor NUL: a loop, where
// strings.ContainsAny builds its character set on every call (1.1% of the
// broker's CPU in issue 14's profiles of the send path; BenchmarkPathSafe
// 13-19 ns against 29-34 ns for a 16-byte topic).
func pathSafe(topic string) bool {
	for i := 0; i < len(topic); i++ {
		if c := topic[i]; c == '/' || c == 0 {
			return false
		}
	}
	return true
}

// putRequest is the commitlog.Batch of one put. Encode runs under the
// commit log's append lock, which is what guards the queue offsets
// (offsets.go): they are assigned in commit-log order.
type putRequest struct {
	s            *Store
	ms           []*message.Message
	crcs         []uint32
	queueOffsets []int64
	phys         []int64
	one          [1]*message.Message
	// Recorded by Encode for the result, so that an asynchronous put's
	// completion never reads the messages: the first record's size and
	// store timestamp.
	size   int
	ts     int64
	single bool      // a single put (PutResult.Size), not a batch
	done   PutDone   // an asynchronous put's caller (PutMessageAsync)
	topic  *Topic    // the put's topic handle or nil; Encode keeps the one it used
	out    PutResult // a SYNC_MASTER's stored put while its slave is awaited
}

var putRequestPool = sync.Pool{New: func() any { return new(putRequest) }}

func getPutRequest(s *Store, batch []*message.Message, m *message.Message) *putRequest {
	r := putRequestPool.Get().(*putRequest)
	r.s, r.ms, r.single, r.topic = s, batch, batch == nil, nil
	if batch == nil {
		r.one[0] = m
		r.ms = r.one[:]
	}
	r.crcs, r.queueOffsets, r.phys = r.crcs[:0], r.queueOffsets[:0], r.phys[:0]
	return r
}

// checksum computes the body CRCs, outside the append lock.
func (r *putRequest) checksum() {
	for _, m := range r.ms {
		r.crcs = append(r.crcs, message.BodyCRC(m.Body))
	}
}

func (r *putRequest) Len() int       { return len(r.ms) }
func (r *putRequest) Size(i int) int { return r.ms[i].Size() }

// Encode encodes message i at phys. An asynchronous put forgets its
// messages once the last is encoded (the commit log reads Len once, before
// encoding): its completion never reads them, and a deferred send must not
// keep its producer's body alive until it is answered, possibly seconds
// later on a SYNC_MASTER (the broker defers thousands of sends a
// connection, internal/broker/senddeferred.go).
func (r *putRequest) Encode(i int, dst []byte, phys, ts int64) {
	m := r.ms[i]
	var qo int64
	qo, r.topic = r.s.offsets.next(m, r.topic) // a batch's later messages reuse the handle
	m.Encode(dst, r.crcs[i], qo, phys, ts)
	if i == 0 {
		r.size, r.ts = m.Size(), ts
	}
	r.queueOffsets = append(r.queueOffsets, qo)
	r.phys = append(r.phys, phys)
	if r.done != nil && i == len(r.ms)-1 {
		r.ms, r.one[0] = nil, nil
	}
}
