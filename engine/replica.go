package engine

// Replication entry points (package ha streams them; see ha/FORMAT.md).
// A master exposes its log as frames read from the files or the in-memory
// mirror a bounded piece at a time; a slave appends those frames at the
// offsets they name, through its own flush policy, and its dispatcher
// builds consume queues and the index from them like from any append.

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mqd/mqd/commitlog"
	"github.com/mqd/mqd/flush"
)

// ErrSlaveStore is why a slave's store refuses puts (DefaultMessageStore
// refuses writes in slave mode; the broker answers SERVICE_NOT_AVAILABLE).
var ErrSlaveStore = errors.New("service not available now. It may be caused by one of the following reasons: the broker's disk is full, messages are put to the slave, message store has been shut down, etc. (this broker is a SLAVE)")

// ReplicaWaiter is what a SYNC_MASTER's put waits on after its own flush:
// WaitReplica returns PutOK once a slave holds every byte below end,
// FlushSlaveTimeout or SlaveNotAvailable otherwise (CommitLog
// submitReplicaRequest). The broker plugs the ha package in here.
type ReplicaWaiter interface {
	WaitReplica(end int64) PutStatus
}

// ReplicaAsyncWaiter is implemented by a ReplicaWaiter that can answer
// without blocking (PutMessageAsync): WaitReplicaAsync returns WaitReplica's
// status and true when it is known at once; otherwise false, and
// done.ReplicaDone gets it later, exactly once.
type ReplicaAsyncWaiter interface {
	WaitReplicaAsync(end int64, done ReplicaDone) (PutStatus, bool)
}

// ReplicaDone is told an asynchronous replica wait's status; it must not
// block (it runs on the goroutine that reads the slave's reports, a
// timer's, or one that changes the replication state: the ha server's
// close, fence or in-sync set).
type ReplicaDone interface{ ReplicaDone(PutStatus) }

// ReplicaChecker is implemented by a ReplicaWaiter that can refuse a put
// before it is written (controller mode: the in-sync set is below
// minInSyncReplicas; Java's CommitLog checks it before the append).
type ReplicaChecker interface {
	EnoughReplicas() bool
}

// ErrInSyncReplicasNotEnough is the refusal's reason; the broker sends it
// as the remark of SYSTEM_ERROR (1), as Java does.
var ErrInSyncReplicasNotEnough = errors.New("in-sync replicas not enough")

// enoughReplicas asks the replica waiter, if it can tell, whether a put
// the producer waits for may be written.
func (s *Store) enoughReplicas(producerWaits bool) bool {
	if !producerWaits || s.replica == nil {
		return true
	}
	c, ok := s.replica.(ReplicaChecker)
	return !ok || c.EnoughReplicas()
}

// ReplicaBatcher is implemented by a ReplicaWaiter whose slave receives
// the log in batches: ReplicaBatchSize is the most bytes one carries, and
// a group of puts waiting for the slave spans at most that many
// (replica_group.go).
type ReplicaBatcher interface {
	ReplicaBatchSize() int64
}

// SetReplicaWaiter makes puts that wait (not WAIT=false) also wait for a
// slave. Call before the store takes puts.
func (s *Store) SetReplicaWaiter(w ReplicaWaiter) {
	s.replica = w
	s.rg.span = defaultReplicaGroupSpan
	if b, ok := w.(ReplicaBatcher); ok && b.ReplicaBatchSize() > 0 {
		s.rg.span = b.ReplicaBatchSize()
	}
}

// ErrFenced is why a fenced master's store refuses puts (SetFenced).
var ErrFenced = errors.New("service not available now: this broker is fenced (it may no longer be the master of its broker name until the controller confirms its role); send to the current master")

// SetFenced makes the store refuse (true) or accept again (false) puts,
// at any time: a master that may have lost its mastership writes nothing.
func (s *Store) SetFenced(on bool) { s.fenced.Store(on) }

// SetSlave makes the store refuse puts: only replicated frames are
// appended (AppendReplica). Call before the store takes puts.
func (s *Store) SetSlave(slave bool) { s.slave = slave }

// waitReplica applies the replica wait to a stored put whose producer
// waits (WAIT is not false). It does not depend on the flush policy: an
// ASYNC_FLUSH SYNC_MASTER waits for its slave too.
func (s *Store) waitReplica(out *PutResult, end int64, producerWaits bool) {
	if s.replica == nil || !producerWaits || out.Status != PutOK {
		return
	}
	if st := s.replica.WaitReplica(end); st != PutOK {
		out.Status = st
	}
}

// advance is a broadcast of "the log's written or durable offset moved".
type advance struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next advance.
func (a *advance) wait() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil {
		a.ch = make(chan struct{})
	}
	return a.ch
}

func (a *advance) fire() {
	a.mu.Lock()
	if a.ch != nil {
		close(a.ch)
		a.ch = nil
	}
	a.mu.Unlock()
}

// Advanced returns a channel closed the next time the commit log's written
// or durable offset moves (replication waits on it for new bytes or acks).
func (s *Store) Advanced() <-chan struct{} { return s.adv.wait() }

// WrittenOffset is the end of the bytes handed to the files: what a master
// may stream and what a slave acknowledges.
func (s *Store) WrittenOffset() int64 { return s.cl.Written() }

// SegmentSize is mappedFileSizeCommitLog; master and slave must agree.
func (s *Store) SegmentSize() int64 { return s.cl.SegmentSize() }

// TrailerBefore is the CRC-32C trailer of the frame ending at end (ok false
// when end is 0 or a segment base); master and slave compare it at the
// join point.
func (s *Store) TrailerBefore(end int64) (uint32, bool, error) { return s.cl.TrailerBefore(end) }

// AppendReplica appends frames a master stored from offset from (this log's
// end). Every record is validated (frame and body CRC, lengths, its own
// offset) before anything is appended. With durable it returns once the
// frames are durable (one fdatasync for the whole call); otherwise once they
// are in the log's memory. It returns the log's new end.
func (s *Store) AppendReplica(from int64, frames []byte, durable bool) (int64, error) {
	if s.disk.full.Load() {
		return 0, ErrDiskFull
	}
	w := flush.NoWait
	if durable {
		w = flush.WaitDurable
	}
	return s.cl.AppendFrames(from, frames, w)
}

// FrameReader reads a master's log as frames (record + CRC-32C trailer),
// skipping blank markers, a bounded piece at a time. One goroutine uses it.
type FrameReader struct {
	s  *Store
	it *commitlog.Iterator
}

// NewFrameReader starts at from, which must be a frame boundary of this log
// (a slave's end, checked with TrailerBefore).
func (s *Store) NewFrameReader(from int64) (*FrameReader, error) {
	if from < s.cl.MinOffset() || from > s.cl.Written() {
		return nil, fmt.Errorf("engine: replication from %d outside the log [%d,%d]", from, s.cl.MinOffset(), s.cl.Written())
	}
	return &FrameReader{s: s, it: s.cl.NewIterator(from)}, nil
}

// Offset is where the next frame starts (or the blank marker before it).
func (r *FrameReader) Offset() int64 { return r.it.Offset() }

// Read appends to dst the frames from the reader's offset up to the written
// end, stopping once dst holds at least max bytes (a record larger than max
// is returned alone). It returns dst and the offset just past the last frame
// (unchanged when nothing new was written).
func (r *FrameReader) Read(dst []byte, max int) ([]byte, int64, error) {
	limit := r.s.cl.Written()
	for len(dst) < max {
		_, frame, err := r.it.NextFrame(limit)
		if err != nil {
			return dst, r.it.Offset(), err
		}
		if frame == nil {
			break
		}
		dst = append(dst, frame...)
	}
	return dst, r.it.Offset(), nil
}

// Close releases the reader's hold on the log's memory.
func (r *FrameReader) Close() { r.it.Close() }
