package engine

import (
	"cmp"
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
	if broken := d.s.cq.Broken(); len(broken) > 0 {
		d.repair(broken)
	}
}

// errStopping ends a replay when the store is closing: a rebuild left
// half done is finished by the next run (the queue keeps its lost offset,
// so the checkpoint stays below it).
var errStopping = errors.New("engine: store closing")

func (d *dispatcher) stopping() bool {
	select {
	case <-d.s.stop:
		return true
	default:
		return false
	}
}

type queueKey struct {
	topic string
	id    int
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
	d.replays.Add(1)
	for {
		at := it.Offset()
		if d.stopping() {
			return at, errStopping
		}
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

// repair rebuilds the queues out of service with one pass over the log
// from the smallest offset any of them misses, not one pass per queue: with
// thousands of queues out of service (the process ran out of descriptors)
// a pass per queue would take hours and hold up Close. It stops when the
// store closes, and logs one line per attempt, not one per queue.
func (d *dispatcher) repair(broken []*consumequeue.Queue) {
	d.rounds.Add(1)
	rebuild := make(map[queueKey]*consumequeue.Queue, len(broken))
	from := int64(-1)
	var failed int
	var firstErr error
	for _, q := range broken {
		if d.stopping() {
			return
		}
		f, err := q.Reopen()
		if err != nil {
			failed, firstErr = failed+1, cmp.Or(firstErr, err)
			continue
		}
		rebuild[queueKey{q.Topic(), q.ID()}] = q
		if f >= 0 && (from < 0 || f < from) {
			from = f
		}
	}
	if from >= 0 {
		if _, err := d.redispatch(rebuild, from); err != nil {
			for _, q := range rebuild {
				q.Abandon(err)
			}
			if !errors.Is(err, errStopping) {
				d.s.log.Error("engine: rebuilding consume queues failed", "queues", len(rebuild), "from", from, "err", err)
			}
			return
		}
	}
	repaired := 0
	for _, q := range rebuild {
		if err := q.Flush(0); err != nil {
			failed, firstErr = failed+1, cmp.Or(firstErr, err)
			continue
		}
		q.MarkRepaired()
		repaired++
	}
	if repaired > 0 {
		d.s.log.Info("engine: consume queues rebuilt and back in service", "queues", repaired,
			"from", from, "to", d.done.Load())
	}
	if failed > 0 {
		d.s.log.Warn("engine: consume queues still out of service", "queues", failed, "err", firstErr)
	}
}

// redispatch puts the entries of the records in [from, dispatched) into
// the queues being rebuilt. A queue whose Put fails is taken out of
// service again (and out of this rebuild); the others go on.
func (d *dispatcher) redispatch(rebuild map[queueKey]*consumequeue.Queue, from int64) (int64, error) {
	return d.replay(from, func(r *DispatchRequest) error {
		k := queueKey{r.Topic, int(r.QueueID)}
		q := rebuild[k]
		if q == nil {
			return nil
		}
		if t := r.SysFlag & message.FlagTransactionMask; t == message.FlagPrepared || t == message.FlagRollback {
			return nil
		}
		if err := q.Put(r.QueueOffset, consumequeue.Entry{CommitLogOffset: r.PhysOffset, Size: r.Size, TagsCode: r.TagsCode}); err != nil {
			q.Abandon(err)
			delete(rebuild, k)
		}
		return nil
	})
}

// queueUnavailable reports whether err means a consume queue is out of
// service (its pulls answer StoreReadError).
func queueUnavailable(err error) bool { return errors.Is(err, consumequeue.ErrUnavailable) }
