package commitlog

import "time"

// A sync beside the writes: under a policy whose acknowledgements do not
// wait for durability (ASYNC_FLUSH: flush.Policy.Durable is false), the
// periodic fdatasync runs on a goroutine of its own while the flush loop
// goes on writing, so that a send waiting for its write (flush.WaitWritten)
// never waits for the sync. The segment files of such a log are written
// through the page cache (createSegment), and an fdatasync then writes back
// everything written since the last one: at 10k msg/s of 1 KiB, twice a
// second, about 5 MiB, which held every write behind it for milliseconds.
//
// The loop stays the only owner of the decision and of the offsets: it
// starts at most one sync at a time, takes the segments it must cover from
// flushState.dirty, and publishes the durable offset only when it reaps the
// sync's outcome (flushLoop wakes for it). An fdatasync covers every write
// that completed before it began, so the durable offset it yields is the
// written end when it started, never a write made meanwhile. A failure is
// sticky as any other (Log.fail), and never retried.
//
// The sync runs on one goroutine, started with the first and ended with the
// loop (stopBesideSync), so that a round that syncs allocates nothing.
type besideSync struct {
	run  chan struct{} // the loop hands a sync over: the fields below are set
	done chan error    // the sync's outcome
	segs []*segment    // the segments to sync, their files held (acquireFiles)

	end, endTS int64     // the written end (and its store timestamp) when the sync began
	began      time.Time // for the round's latency figure
	busy       bool      // a sync is in flight: only done may be touched
}

// startBesideSync starts the sync of every dirty segment (the tail when
// none is) up to the written end st.written.
func (l *Log) startBesideSync(st *flushState, tail *segment, endTS int64) {
	b := st.beside
	if b == nil {
		b = &besideSync{run: make(chan struct{}, 1), done: make(chan error, 1)}
		st.beside = b
		go b.loop()
	}
	b.segs = append(b.segs[:0], st.dirty...)
	if len(b.segs) == 0 {
		b.segs = append(b.segs, tail)
	}
	st.dirty = st.dirty[:0]
	for i, s := range b.segs {
		if !s.acquireFiles() { // removed: retention takes only durable segments, so never
			b.segs[i] = nil
		}
	}
	b.end, b.endTS, b.began, b.busy = st.written, endTS, time.Now(), true
	st.lastSync = b.began
	b.run <- struct{}{}
}

// loop runs the syncs handed over until run is closed.
func (b *besideSync) loop() {
	for range b.run {
		var err error
		for i, s := range b.segs {
			if s == nil {
				continue
			}
			if err == nil {
				err = s.wf.Sync()
			}
			s.releaseFiles()
			b.segs[i] = nil
		}
		b.done <- err
	}
}

// stopBesideSync waits for the sync in flight (publishing it) and ends the
// sync goroutine.
func (l *Log) stopBesideSync(st *flushState) {
	l.reapBesideSync(st, true)
	if st.beside != nil {
		close(st.beside.run)
		st.beside = nil
	}
}

// syncDone is the channel the sync in flight reports on, or nil.
func (st *flushState) syncDone() <-chan error {
	if st.beside == nil || !st.beside.busy {
		return nil
	}
	return st.beside.done
}

// syncing reports whether a sync is in flight.
func (st *flushState) syncing() bool { return st.beside != nil && st.beside.busy }

// reapBesideSync takes the outcome of the sync in flight, if it ended or
// when wait is true (Close: waiting for it), and publishes it.
func (l *Log) reapBesideSync(st *flushState, wait bool) {
	if !st.syncing() {
		return
	}
	if wait {
		l.besideSynced(st, <-st.beside.done)
		return
	}
	select {
	case err := <-st.beside.done:
		l.besideSynced(st, err)
	default:
	}
}

// besideSynced publishes the outcome err of the sync in flight: the
// durable offset it yields, or the log's failure.
func (l *Log) besideSynced(st *flushState, err error) {
	b := st.beside
	b.busy = false
	if err != nil {
		l.fail(err)
		return
	}
	l.flushStats.synced(time.Since(b.began), b.end-st.synced, 0) // stats.go
	st.synced = b.end
	l.durTS.Store(b.endTS)
	l.durable.Store(b.end)
	l.advanced() // e.g. a slave reporting its durable end (haSlaveAckDurable)
}
