package engine

import (
	"errors"
	"time"

	"github.com/mqd/mqd/consumequeue"
	"github.com/mqd/mqd/internal/message"
)

// A consume queue whose write or sync failed (disk full, I/O error) is out
// of service: the dispatcher skips it and serves every other queue, pulls
// on it get StoreReadError, the checkpoint's dispatched offset and
// retention stay below the first entry it misses (consumequeue/fault.go).
// The dispatcher goroutine retries the rebuild every repairInterval: the
// queue drops what was not durable, the log range it missed is dispatched
// into it again, and once a flush of it succeeded it is readable again.
// The index is handled alike when it cannot take a key (indexDispatcher):
// the keys of the range it missed are put again (reindex).

// repairInterval spaces rebuild attempts of queues out of service.
const repairInterval = time.Second

// repairQueues tries to rebuild every queue out of service. It runs on the
// dispatcher goroutine, between drains, so the range dispatched again ends
// exactly where the dispatcher resumes.
func (d *dispatcher) repairQueues() {
	every := repairInterval
	if v := d.repairEvery.Load(); v != 0 {
		every = time.Duration(v) // tests
	}
	// checked at most every interval: listing the queues is not free and
	// the dispatcher comes here after every wake-up
	if time.Since(d.lastRepair) < every {
		return
	}
	d.lastRepair = time.Now()
	if id := d.index(); id != nil && id.lost.Load() >= 0 {
		d.reindex(id)
	}
	for _, q := range d.s.cq.Broken() {
		d.repair(q)
	}
}

// reindex puts the keys of the records in [lost, dispatched) into the
// index again; Put skips those it already holds. A failure leaves lost at
// the record that failed, for the next attempt.
func (d *dispatcher) reindex(id *indexDispatcher) {
	from, limit := id.lost.Load(), d.done.Load()
	if at, err := d.replay(from, id.put); err != nil {
		id.lost.Store(at)
		d.s.log.Warn("engine: index still failing", "offset", at, "err", err)
		return
	}
	id.lost.Store(-1)
	d.s.log.Info("engine: index caught up after a failure", "from", from, "to", limit)
}

// replay hands every record of [from, dispatched) to fn, in log order. On
// failure it returns the offset of the record it stopped at.
func (d *dispatcher) replay(from int64, fn func(r *DispatchRequest) error) (int64, error) {
	it := d.s.cl.NewIterator(max(from, d.s.cl.MinOffset()))
	defer it.Close()
	limit := d.done.Load()
	var r DispatchRequest
	for {
		at := it.Offset()
		phys, rec, err := it.Next(limit)
		if err != nil {
			return at, err
		}
		if rec == nil {
			return 0, nil
		}
		if _, err := d.fill(&r, phys, rec); err != nil {
			return phys, err
		}
		if err := fn(&r); err != nil {
			return phys, err
		}
	}
}

func (d *dispatcher) repair(q *consumequeue.Queue) {
	from, err := q.Reopen()
	if err != nil {
		d.s.log.Warn("engine: consume queue still out of service", "topic", q.Topic(), "queue", q.ID(), "err", err)
		return
	}
	if from >= 0 {
		if err := d.redispatch(q, from); err != nil {
			q.Abandon(err)
			d.s.log.Error("engine: rebuilding consume queue failed", "topic", q.Topic(), "queue", q.ID(), "err", err)
			return
		}
	}
	if err := q.Flush(0); err != nil {
		d.s.log.Warn("engine: consume queue still out of service", "topic", q.Topic(), "queue", q.ID(), "err", err)
		return
	}
	q.MarkRepaired()
	d.s.log.Info("engine: consume queue rebuilt and back in service", "topic", q.Topic(), "queue", q.ID(),
		"from", from, "to", d.done.Load(), "maxOffset", q.MaxOffset())
}

// redispatch puts the entries of q's records in [from, dispatched) again.
func (d *dispatcher) redispatch(q *consumequeue.Queue, from int64) error {
	_, err := d.replay(from, func(r *DispatchRequest) error {
		if r.Topic != q.Topic() || int(r.QueueID) != q.ID() {
			return nil
		}
		if t := r.SysFlag & message.FlagTransactionMask; t == message.FlagPrepared || t == message.FlagRollback {
			return nil
		}
		return q.Put(r.QueueOffset, consumequeue.Entry{CommitLogOffset: r.PhysOffset, Size: r.Size, TagsCode: r.TagsCode})
	})
	return err
}

// queueUnavailable reports whether err means a consume queue is out of
// service (its pulls answer StoreReadError).
func queueUnavailable(err error) bool { return errors.Is(err, consumequeue.ErrUnavailable) }
