package consumequeue

import (
	"errors"
	"fmt"
)

// A failed write or sync (disk full, I/O error) takes one queue out of
// service, never the others:
//
//   - fail records the error and the commit-log offset from which the queue
//     may miss entries (lost): the first entry put that was not durable.
//   - Put refuses entries with ErrUnavailable (recording lost if nothing
//     was missing before); the dispatcher skips the queue and keeps serving
//     every other one. Reads fail with ErrUnavailable.
//   - Store.LostFloor is the smallest lost offset: the engine never
//     checkpoints a dispatched offset past it nor lets retention remove the
//     log there, so the missed range can be dispatched again, also after a
//     crash.
//   - Reopen (the engine retries it while the queue is out of service)
//     drops every entry that was not durable — after a failed fdatasync
//     the kernel may have dropped their pages, so they are rewritten, never
//     trusted — and puts the queue back in service, marked repairing (reads
//     still fail). The engine dispatches the log from lost into it again,
//     flushes it, and calls MarkRepaired once that flush succeeded.

// unavailable is the error readers get while the queue is out of service
// or being rebuilt. Called with mu held.
func (q *Queue) unavailable() error {
	if q.err != nil {
		return q.err
	}
	return fmt.Errorf("%w: %s/%d: being rebuilt from the commit log", ErrUnavailable, q.topic, q.id)
}

// Err returns why the queue cannot be read (ErrUnavailable wrapped), or nil.
func (q *Queue) Err() error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.err == nil && !q.repairing {
		return nil
	}
	return q.unavailable()
}

// Broken reports whether the queue is out of service (a failed write or
// sync not yet handled by Reopen).
func (q *Queue) Broken() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.err != nil
}

// Reopen puts a queue that is out of service back in service: it drops
// the entries that were not durable (truncating their files) and returns
// the commit-log offset from which entries must be put again (-1: none are
// missing). The queue stays unreadable (repairing) until MarkRepaired.
// Only the dispatcher goroutine calls it, never concurrently with Put.
func (q *Queue) Reopen() (from int64, err error) {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	if q.err == nil {
		q.mu.Unlock()
		return -1, nil
	}
	from, c := q.lost, q.synced
	// forget what was not written: [written, max) lives only in pending
	q.pending, q.max = q.pending[:0], q.written
	q.mu.Unlock()
	if err := q.dropUnsynced(c); err != nil {
		return 0, fmt.Errorf("consumequeue: %s/%d: dropping entries that were not durable: %w", q.topic, q.id, err)
	}
	q.mu.Lock()
	q.err, q.repairing = nil, true
	q.mu.Unlock()
	return from, nil
}

// dropUnsynced cuts the queue back to its first c entries, all durable.
// Called with wmu held and nothing pending.
func (q *Queue) dropUnsynced(c int64) error {
	if len(q.segs) == 0 {
		q.mu.Lock()
		q.min, q.max, q.written, q.synced, q.maxPhys, q.unsynced = 0, 0, 0, 0, -1, -1
		q.mu.Unlock()
		return nil
	}
	// the sync below (cutAfter) also covers a directory whose sync failed
	q.dirtyDir = true
	if (c*EntrySize-q.segs[0].base)/q.fileSize < int64(len(q.segs)) {
		return q.truncateAt(c)
	}
	// c ends the last file exactly: nothing to cut in the files
	if c <= q.segs[0].base/EntrySize {
		return q.reset()
	}
	prev, err := q.loadEntry(c - 1)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.max, q.written, q.synced, q.maxPhys, q.unsynced = c, c, c, prev.end(), -1
	q.mu.Unlock()
	return q.syncDirs()
}

// MarkRepaired ends a rebuild: the engine calls it after the entries put
// since Reopen were flushed and synced. Reads work again.
func (q *Queue) MarkRepaired() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		if q.repairing {
			q.countTrouble(-1)
		}
		q.repairing, q.lost = false, -1
	}
}

// countTrouble adds d to the store's count of queues out of service or
// being rebuilt; called with mu held as err or repairing changes.
func (q *Queue) countTrouble(d int64) {
	if q.troubled != nil {
		q.troubled.Add(d)
	}
}

// Broken returns the queues that are out of service.
func (s *Store) Broken() []*Queue {
	if s.troubled.Load() == 0 {
		return nil
	}
	var out []*Queue
	for _, q := range s.snapshot() {
		if q.Broken() {
			out = append(out, q)
		}
	}
	return out
}

// LostFloor is the smallest commit-log offset from which a queue out of
// service or being rebuilt may miss entries, or -1 when none does.
func (s *Store) LostFloor() int64 {
	floor := int64(-1)
	if s.troubled.Load() == 0 { // lost is set only while a queue is troubled
		return floor
	}
	for _, q := range s.snapshot() {
		q.mu.RLock()
		lost := q.lost
		q.mu.RUnlock()
		if lost >= 0 && (floor < 0 || lost < floor) {
			floor = lost
		}
	}
	return floor
}

// skipUnavailable drops ErrUnavailable from err: a queue out of service
// must not fail store-wide maintenance (flush, retention, recovery cuts).
func skipUnavailable(err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// Abandon takes a queue being rebuilt out of service again (the rebuild
// could not read the log); the next Reopen starts over.
func (q *Queue) Abandon(err error) { _ = q.fail(err) }
