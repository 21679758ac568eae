package engine

import (
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/commitlog"
	"github.com/mqd/mqd/internal/message"
)

// DispatchRequest describes one record to the consumers of the commit log
// (consume queues, index). Topic and Properties alias the record bytes and
// are valid only during the Dispatch call.
type DispatchRequest struct {
	Topic                     string
	QueueID                   int32
	QueueOffset               int64
	PhysOffset                int64
	Size                      int32
	TagsCode                  int64
	StoreTimestamp            int64
	SysFlag                   int32
	PreparedTransactionOffset int64
	Properties                string
	// UniqKey and Keys are the UNIQ_KEY and KEYS properties, read with
	// TAGS in one pass for the index ("" when absent).
	UniqKey, Keys string
}

// Dispatcher consumes records in commit-log order. Dispatch must be
// idempotent: after a crash the records since the last checkpoint are
// dispatched again.
type Dispatcher interface {
	Dispatch(r *DispatchRequest) error
}

// dispatcher follows the commit log up to the visible offset: the durable
// offset under SYNC_FLUSH (a consumer never sees a message a crash could
// erase), the written offset under ASYNC_FLUSH. Its goroutine is the only
// caller of the Dispatchers while the store is open.
type dispatcher struct {
	s       *Store
	targets []Dispatcher
	wake    chan struct{}
	it      *commitlog.Iterator
	done    atomic.Int64 // offset dispatched up to
	doneTS  atomic.Int64 // store timestamp of the last dispatched record
	records atomic.Int64 // records dispatched since open
	busy    atomic.Int64 // nanoseconds spent dispatching since open
	req     DispatchRequest
	// lastRepair is when queues out of service were last rebuilt (owned by
	// the dispatcher goroutine; see cqrepair.go).
	lastRepair  time.Time
	repairEvery atomic.Int64  // tests override repairInterval (ns; 0: default)
	replays     atomic.Int64  // passes over the log by repairs (tests)
	rounds      atomic.Int64  // repair attempts of queues out of service (tests)
	limit       dispatchLimit // dispatchlimit.go
}

func newDispatcher(s *Store, from int64, targets []Dispatcher) *dispatcher {
	d := &dispatcher{s: s, targets: targets, wake: make(chan struct{}, 1), it: s.cl.NewIterator(from)}
	d.done.Store(from)
	return d
}

func (d *dispatcher) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) visible() int64 { return d.limit.cap(d.s.cl.Visible()) }

type dispatchProgress struct{ offset, timestamp int64 }

// progress is what the checkpoint may record as dispatched: never past
// the offset from which a consume queue out of service misses entries
// (they are dispatched to it again from there, also after a crash).
func (d *dispatcher) progress() dispatchProgress {
	p := dispatchProgress{d.done.Load(), d.doneTS.Load()}
	if floor := d.lostFloor(); floor >= 0 && floor < p.offset {
		p.offset = floor
	}
	return p
}

// lostFloor is the smallest commit-log offset from which a consume queue
// or the index misses entries (to be dispatched to it again), -1: none.
func (d *dispatcher) lostFloor() int64 {
	floor := d.s.cq.LostFloor()
	if id := d.index(); id != nil {
		if l := id.lost.Load(); l >= 0 && (floor < 0 || l < floor) {
			floor = l
		}
	}
	return floor
}

// index is the index dispatcher among the targets.
func (d *dispatcher) index() *indexDispatcher {
	for _, t := range d.targets {
		if id, ok := t.(*indexDispatcher); ok {
			return id
		}
	}
	return nil
}

func (d *dispatcher) caughtUp() bool { return d.done.Load() >= d.visible() }

// Dispatched is the log offset below which every record has been given to
// the consume queues, the index and the other dispatchers (the broker's
// transaction service keeps decisions in memory until they are indexed).
func (s *Store) Dispatched() int64 { return s.dispatch.done.Load() }

// Lag is how many bytes of the visible log are not dispatched yet.
func (s *Store) DispatchLag() int64 { return max(s.dispatch.visible()-s.dispatch.done.Load(), 0) }

func (d *dispatcher) loop() {
	defer d.s.wg.Done()
	defer d.it.Close()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		d.repairQueues()
		d.drain()
		select {
		case <-d.s.stop:
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// drain dispatches every visible record. It holds the iterator's memory
// only while it runs. A failing dispatcher stops the
// drain at that record; it is retried on the next wake-up, never skipped.
func (d *dispatcher) drain() {
	limit := d.visible()
	if limit <= d.done.Load() {
		return
	}
	start := time.Now()
	defer func() { d.busy.Add(int64(time.Since(start))) }()
	defer d.it.Close() // the iterator re-finds its segment on the next drain
	for {
		phys, rec, err := d.it.Next(limit)
		if err != nil {
			d.s.log.Error("engine: dispatch read failed", "offset", d.it.Offset(), "err", err)
			return
		}
		if rec == nil {
			d.done.Store(d.it.Offset())
			return
		}
		if err := d.one(phys, rec); err != nil {
			d.s.log.Error("engine: dispatch failed; will retry", "offset", phys, "err", err)
			d.it.Close()
			d.it = d.s.cl.NewIterator(phys)
			return
		}
		d.done.Store(d.it.Offset())
		d.records.Add(1)
	}
}

// DispatchStats describes the dispatcher: how far behind the visible log it
// is and how fast it works when it has work.
type DispatchStats struct {
	Lag     int64         // visible bytes not dispatched yet
	Records int64         // records dispatched since open
	Busy    time.Duration // time spent dispatching since open
}

// DispatchStats reports the dispatcher's lag and throughput counters.
func (s *Store) DispatchStats() DispatchStats {
	return DispatchStats{Lag: s.DispatchLag(), Records: s.dispatch.records.Load(), Busy: time.Duration(s.dispatch.busy.Load())}
}

func (d *dispatcher) one(phys int64, rec []byte) error {
	r := &d.req
	v, err := d.fill(r, phys, rec)
	if err != nil {
		return err
	}
	for _, t := range d.targets {
		if err := t.Dispatch(r); err != nil {
			return err
		}
	}
	d.doneTS.Store(v.StoreTimestamp)
	return nil
}

// fill describes the record rec at phys in r as every dispatch target sees
// it: a scheduled message's tags code is its due time (delay.go).
func (d *dispatcher) fill(r *DispatchRequest, phys int64, rec []byte) (message.View, error) {
	v, err := fillRequest(r, phys, rec)
	if err != nil {
		return v, err
	}
	if due, ok := d.s.cfg.scheduleTagsCode(r); ok {
		r.TagsCode = due
	}
	return v, nil
}

// fillRequest describes the record rec at phys in r.
func fillRequest(r *DispatchRequest, phys int64, rec []byte) (message.View, error) {
	v, err := message.Parse(rec)
	if err != nil {
		return v, err
	}
	*r = DispatchRequest{
		Topic: v.TopicString(), QueueID: v.QueueID, QueueOffset: v.QueueOffset, PhysOffset: phys,
		Size: int32(len(rec)), StoreTimestamp: v.StoreTimestamp, SysFlag: v.SysFlag,
		PreparedTransactionOffset: v.PreparedTransactionOffset, Properties: v.PropertiesString(),
	}
	tags, uniq, keys := message.DispatchProperties(r.Properties)
	r.TagsCode, r.UniqKey, r.Keys = message.TagsCode(tags), uniq, keys
	return v, nil
}
