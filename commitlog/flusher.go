package commitlog

import (
	"errors"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
)

// flushLoop is the single owner of the files' write side and of fdatasync.
//
// Ordering argument: an appender encodes its bytes and queues its waiter
// under mu, in one critical section. The loop takes the waiter list and
// reads the tail under mu too, so every waiter it holds ends at or before
// that tail. It then writes [written, tail) — bytes below the tail never
// change again — and, when anyone waits, syncs it (WritevSync). A
// successful sync makes the whole range durable, which releases every waiter
// taken. Waiters queued meanwhile wait for the next round, whose write
// starts where this one ended. Waiters for the write alone (WaitWritten,
// ASYNC_FLUSH's) are taken the same way and released once the round's
// writes succeeded, before a sync the round may do. So no waiter is
// released before its bytes are durable, or written for WaitWritten, and
// one write + one fdatasync serve everyone who arrived while the previous
// round was on the disk (and, under flush.Sync.MinGap, during the hold
// after it).
func (l *Log) flushLoop() {
	defer close(l.loopDone)
	now := time.Now()
	st := flushState{lastSync: now, arrivals: arrivalRate{winAt: now}, written: l.written.Load(), synced: l.durable.Load()}
	var err error
	if st.tailBlock, err = vfs.AlignedBuffer(vfs.Alignment); err != nil {
		l.fail(err)
	}
	defer vfs.FreeAligned(st.tailBlock)
	var spare, spareW []*flush.Waiter
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	hold := holdTimer{log: l.log} // hold.go: opened by the first short hold
	defer hold.close()
	for {
		select {
		case <-l.stop:
			l.finalRound(&st)
			return
		default:
		}
		l.mu.Lock()
		end, endTS := l.tail, l.tailTS
		ws, wws := l.waiters.Take(spare), l.wrote.Take(spareW)
		arrivals := l.waiters.Arrivals()
		segs := l.segs
		l.mu.Unlock()
		st.arrivals.note(arrivals, time.Now()) // hold.go
		st.count = arrivals
		if st.answered {
			st.syncedAt, st.answered = arrivals, false
		}

		sleep, held := l.round(&st, segs, end, endTS, roundWaiters{ws, wws}, false)
		spare, spareW = ws[:0], wws[:0]
		if sleep == 0 {
			continue
		}
		if held && sleep <= maxPreciseHold {
			// A hold needs a durable policy, so no sync runs beside the
			// loop (beside.go) to be waited for meanwhile.
			st.arrivals.holdFrom(arrivals) // hold.go
			hold.sleep(sleep)
			continue
		}
		kick := l.kick
		if held {
			kick = nil // appends join the held round without waking the loop
		}
		timer.Reset(sleep)
		select {
		case <-kick:
		case <-timer.C:
		case err := <-st.syncDone(): // beside.go
			l.besideSynced(&st, err)
		case <-l.stop:
			l.finalRound(&st)
			return
		}
		timer.Stop()
	}
}

// finalRound writes and syncs everything appended before Close.
func (l *Log) finalRound(st *flushState) {
	l.stopBesideSync(st) // beside.go
	l.mu.Lock()
	end, endTS := l.tail, l.tailTS
	ws := roundWaiters{l.waiters.Take(nil), l.wrote.Take(nil)}
	segs := l.segs
	l.mu.Unlock()
	l.round(st, segs, end, endTS, ws, true)
}

// roundWaiters are the waiters a round took: for the sync and for the
// write.
type roundWaiters struct{ synced, written []*flush.Waiter }

// release releases the waiters whose bytes are synced or written, or all
// of them with err, and returns the rest.
func (w roundWaiters) release(synced, written int64, err error) roundWaiters {
	return roundWaiters{flush.Release(w.synced, synced, err), flush.Release(w.written, written, err)}
}

// flushState is owned by the flush loop.
type flushState struct {
	written   int64      // end of bytes handed to the files
	synced    int64      // end of durable bytes
	dirty     []*segment // segments holding written but unsynced bytes
	lastSync  time.Time
	tailBlock []byte      // private copy of the partial last block of a write
	iov       [2][]byte   // the write's buffers, kept here so they don't escape per write
	keptChunk int64       // the chunk of the written end when the window last moved (keeper.go)
	beside    *besideSync // the periodic sync beside the writes (beside.go), or nil
	arrivals  arrivalRate // the durable waiters' (flush.Pending.Rate; hold.go)
	// count is the waiters' arrival count read with this round's waiters;
	// syncedAt and released are the count when the last round that synced
	// answered its waiters, and how many it answered (flush.Pending.Released,
	// Back). The count is read at the top of the loop right after that
	// round (answered), so the round takes no lock for it.
	count, syncedAt, released uint64
	answered                  bool
}

// round writes what was appended, syncs when the policy says so (or when
// force, or a Flush, asks), releases waiters and returns how long the loop
// may sleep (0: go again) and whether that sleep is the policy's hold (an
// append does not end it; flush.Policy.Decide). Waiters it could not
// release go back to the queue: a waiter is never dropped.
func (l *Log) round(st *flushState, segs []*segment, end, endTS int64, ws roundWaiters, force bool) (sleep time.Duration, hold bool) {
	l.reapBesideSync(st, false) // beside.go: publishes the durable offset, or fails the log
	if err := l.Err(); err != nil {
		ws.release(0, 0, err)
		return time.Second, false
	}
	ws = ws.release(st.synced, st.written, nil) // e.g. a Flush with nothing new to sync
	pending := end - st.written
	doSync, sleep := l.cfg.Policy.Decide(flush.Pending{Dirty: st.written - st.synced + pending, Since: time.Since(st.lastSync),
		Waiting: len(ws.synced) > 0, Rate: st.arrivals.win, Held: st.arrivals.afterHold, Arrived: st.arrivals.arrived,
		Released: st.released, Back: st.count - st.syncedAt})
	doSync = doSync || ((force || l.forceUpTo.Load() > st.synced) && end > st.synced)
	beside := doSync && !force && !l.cfg.Policy.Durable() // beside.go
	if beside && st.syncing() {
		// One sync at a time: this one starts when the one in flight
		// ends, which wakes the loop (flushLoop).
		doSync, beside, sleep = false, false, time.Second
	}
	if pending == 0 && !doSync {
		l.requeue(ws)
		return sleep, false
	}
	if !doSync && sleep > 0 && l.cfg.Policy.Durable() {
		l.requeue(ws)
		return sleep, true
	}
	began, from := time.Now(), st.synced
	if err := l.writeRange(st, segs, end, doSync && !beside, &ws); err != nil {
		if l.writeNoSpace(err, ws) {
			return time.Second, false // retried: the bytes are still in memory
		}
		l.fail(err)
		ws.release(0, 0, l.Err())
		return time.Second, false
	}
	l.spaceBack()
	moved := l.dropBehindWritten(st, end) // keeper.go
	l.written.Store(end)
	if moved {
		l.kickPopulate()
	}
	synced := st.synced
	if beside {
		l.startBesideSync(st, segs[len(segs)-1], endTS)
	} else if doSync {
		l.flushStats.synced(time.Since(began), end-from, len(ws.synced)) // stats.go
		st.synced = end
		st.lastSync = time.Now()
		l.durTS.Store(endTS)
		l.durable.Store(end)
		synced = end
	}
	if l.cfg.Policy.Durable() || (doSync && !beside) {
		// Before the answers: the dispatcher and replication start on the
		// other core while this one answers (released first, the appender
		// would be the one the scheduler runs next on this core, the
		// dispatcher behind it). A non-durable policy announced its write
		// in writeRange, and a sync beside the loop announces its own.
		l.advanced()
	}
	before := len(ws.synced)
	ws = ws.release(synced, end, nil)
	if doSync && !beside {
		// Counted from the answer: who queued while the round wrote and
		// synced was not among those it answered.
		st.released, st.answered = uint64(before-len(ws.synced)), true
	}
	l.requeue(ws)
	return 0, false
}

// advanced calls the OnAdvance hook: the written or durable offset moved.
func (l *Log) advanced() {
	if fn := l.onAdvance.Load(); fn != nil {
		(*fn)()
	}
}

// requeue puts back waiters a round did not release (ahead of newer ones).
func (l *Log) requeue(ws roundWaiters) {
	if len(ws.synced) == 0 && len(ws.written) == 0 {
		return
	}
	l.mu.Lock()
	if len(ws.synced) > 0 {
		l.waiters.Requeue(ws.synced)
	}
	if len(ws.written) > 0 {
		l.wrote.Requeue(ws.written)
	}
	l.mu.Unlock()
}

// fail records the first write or sync error; it is never cleared.
func (l *Log) fail(err error) {
	if l.failure.CompareAndSwap(nil, &err) {
		close(l.failed) // an appender waiting for a segment gives up (awaitPrepared)
		l.log.Error("commitlog: write or sync failed; the log refuses appends until it is reopened", "err", err)
	}
}

var errMirrorGone = errors.New("commitlog: internal error: mirror released before its bytes were written")

// writeRange writes [st.written, end) segment by segment in pieces of at
// most MaxWrite. With doSync it makes everything written durable: the
// common case — one piece in the tail segment, nothing else dirty — is one
// WritevSync (the write, then an fdatasync of that segment); otherwise
// every dirty segment is synced after the writes. The waiters for the
// write alone are released as soon as [.., end) is written: before those
// syncs (an ASYNC_FLUSH send does not wait for the periodic fdatasync, nor
// hear of its failure), after the single WritevSync.
func (l *Log) writeRange(st *flushState, segs []*segment, end int64, doSync bool, ws *roundWaiters) error {
	wrote := func() { // published first: a released appender sees its bytes written
		l.written.Store(end)
		if !l.cfg.Policy.Durable() {
			l.advanced() // what readers see and replication streams: announced before the answers
		}
		ws.written = flush.Release(ws.written, end, nil)
	}
	tail := segs[len(segs)-1]
	single := doSync && len(st.dirty) == 0 && st.written >= tail.base && end-alignDown(st.written) <= l.cfg.MaxWrite
	if single {
		if end == st.written {
			wrote()
			return tail.wf.Sync()
		}
		err := l.writePiece(st, tail, end, true)
		if err == nil {
			wrote()
		}
		return err
	}
	for st.written < end {
		seg := segmentAt(segs, st.written)
		to := end
		if seg != tail {
			to = seg.base + seg.sealed.Load()
		}
		to = min(to, alignDown(st.written)+l.cfg.MaxWrite)
		// Under a durable policy each piece is synced before the next is
		// written, so at most MaxWrite bytes are ever written but not
		// synced: recovery relies on that bound (classify).
		durablePiece := doSync && l.cfg.Policy.Durable()
		if err := l.writePiece(st, seg, to, durablePiece); err != nil {
			return err
		}
		if !durablePiece && (len(st.dirty) == 0 || st.dirty[len(st.dirty)-1] != seg) {
			st.dirty = append(st.dirty, seg)
		}
		if seg != tail && to == seg.base+seg.sealed.Load() {
			st.written = seg.base + l.cfg.SegmentSize // past the zeros after the blank
		}
	}
	wrote()
	if !doSync {
		return nil
	}
	if len(st.dirty) == 0 && !l.cfg.Policy.Durable() {
		st.dirty = append(st.dirty, tail)
	}
	for _, s := range st.dirty {
		if err := s.wf.Sync(); err != nil {
			return err
		}
	}
	st.dirty = st.dirty[:0]
	return nil
}

// writePiece writes [st.written, to) of seg: the whole blocks straight
// from the mirror, the partial last block from a private zero-padded copy
// (appenders may be writing the rest of that block in the mirror).
func (l *Log) writePiece(st *flushState, seg *segment, to int64, sync bool) error {
	m := seg.mem.Load()
	if m == nil || !m.acquire() {
		return errMirrorGone
	}
	defer m.release()
	from := alignDown(st.written - seg.base)
	rel := to - seg.base
	full := alignDown(rel)
	bufs := st.iov[:0]
	if full > from {
		bufs = append(bufs, m.buf[from:full])
	}
	if rel > full {
		n := copy(st.tailBlock, m.buf[full:rel])
		clear(st.tailBlock[n:])
		bufs = append(bufs, st.tailBlock)
	}
	var err error
	if sync {
		err = seg.wf.WritevSync(bufs, from)
	} else {
		err = seg.wf.Writev(bufs, from)
	}
	st.iov = [2][]byte{}
	if err == nil {
		st.written = to
	}
	return err
}

// segmentAt returns the segment holding off (segs is ordered by base).
func segmentAt(segs []*segment, off int64) *segment {
	lo, hi := 0, len(segs)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if segs[mid].base <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return segs[lo]
}

func alignDown(v int64) int64 { return v &^ (vfs.Alignment - 1) }
