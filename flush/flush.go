// Package flush holds the flush policies the commit-log loop consults and
// the queue of appenders waiting for durability. It does no I/O and starts
// no goroutine: the commit log's flush loop owns a Queue's release side, and
// appenders own their Waiter until it is released.
package flush

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Mode names a flush policy's kind. It is what the checkpoint records of
// the policy that wrote the log, so that recovery judges the log's tail by
// the rules it was written under (commitlog/FORMAT.md).
type Mode uint8

// Modes. The values are stored in the checkpoint: never renumber them.
const (
	ModeUnknown Mode = 0 // a checkpoint written before modes were recorded
	ModeSync    Mode = 1 // SYNC_FLUSH
	ModeAsync   Mode = 2 // ASYNC_FLUSH
)

func (m Mode) String() string {
	switch m {
	case ModeSync:
		return "SYNC_FLUSH"
	case ModeAsync:
		return "ASYNC_FLUSH"
	}
	return "unknown"
}

// Wait is what one append waits for before it returns. It is passed
// explicitly with every append (the policy supplies the default; a
// producer's WAIT=false asks for NoWait), so the log never guesses it.
type Wait uint8

// Waits.
const (
	// NoWait returns once the bytes are in the log's memory: they become
	// durable with the next sync the policy decides on. A crash of the
	// process before they are written loses them.
	NoWait Wait = iota
	// WaitDurable returns once the bytes are durable, or ErrTimeout after
	// the policy's WaitTimeout (the bytes are then in the log, their
	// durability unknown). Under any policy, a waiting appender makes the
	// loop sync at once.
	WaitDurable
	// WaitWritten returns once the bytes are written to the files: they
	// survive a crash of the process (kill -9, a panic, the OOM killer),
	// not of the machine, as a Java broker's ASYNC_FLUSH sends in its
	// page cache do. It does not make the loop sync; ErrTimeout as for
	// WaitDurable.
	WaitWritten
)

// Policy is durability as one value from the flag to the fdatasync: when
// the commit-log loop syncs, what an append waits for by default and how
// long, and which offset readers may see. The loop asks it; nothing on the
// append or read path reads configuration or branches on a flush-type
// name.
type Policy interface {
	// Mode is the policy's kind (recorded in the checkpoint).
	Mode() Mode
	// Durable reports whether an acknowledged append is durable
	// (SYNC_FLUSH), that is whether Wait is WaitDurable.
	Durable() bool
	// Wait is what an append waits for unless its producer asked not to.
	Wait() Wait
	// WaitTimeout bounds a WaitDurable or WaitWritten append
	// (syncFlushTimeout).
	WaitTimeout() time.Duration
	// Visible is the log offset readers (consumers, dispatch) may see,
	// given the offset written to the files and the offset made durable:
	// under SYNC_FLUSH only durable records, under ASYNC_FLUSH written ones.
	Visible(written, durable int64) int64
	// Decide is asked before the loop writes what is pending. It returns
	// whether to sync now and, if not, how long the loop may sleep before
	// asking again when no append wakes it.
	//
	// A Durable policy may also answer sync false with bytes dirty and a
	// positive sleep: a hold. When bytes are pending (appended, not yet
	// written) the loop then neither writes nor syncs, and appends do not
	// wake it, until sleep has passed; then it asks again (Held). The
	// round that ends the hold takes everything appended meanwhile
	// (Sync.MinGap).
	Decide(p Pending) (sync bool, sleep time.Duration)
}

// Pending is what the commit-log loop knows when it asks Policy.Decide.
type Pending struct {
	Dirty   int64         // bytes appended or written since the last sync
	Since   time.Duration // time since the last sync ended
	Waiting bool          // an appender waits for durability
	// Rate is how many appenders a second have recently queued to wait
	// for durability: Queue.Arrivals over the loop's last window of at
	// least 10 ms (a window that spans a quiet spell averages over it).
	Rate float64
	// Held reports that the loop has just slept a hold the policy asked
	// for, and Arrived how many appenders queued to wait meanwhile (for
	// holds of up to 1 ms; a longer one, waited on a Go timer, is not
	// reported).
	Held    bool
	Arrived uint64
	// Released is how many appenders the last round that synced
	// answered, and Back how many have queued to wait since it answered
	// them: when Back reaches Released, a closed loop of synchronous
	// senders has sent again, every one, and a hold has nothing more to
	// wait for.
	Released, Back uint64
}

// Sync is SYNC_FLUSH as group commit: whenever an appender waits, the loop
// syncs everything written so far (after MinGap, at GapFromRate or more),
// so one fdatasync releases every waiter.
type Sync struct {
	// Timeout bounds an appender's wait (syncFlushTimeout, 5 s); past it
	// the append reports FLUSH_DISK_TIMEOUT, never success.
	Timeout time.Duration
	// MinGap is the least time from the end of one fdatasync to the start
	// of the next round (syncFlushMinGapMicros), while appenders wait for
	// durability at GapFromRate a second or more. Under a steady stream
	// of appends a round then syncs what arrived in MinGap plus one
	// sync's time, not in one sync's time: fewer, larger rounds (less CPU
	// and fewer device writes per message) for up to MinGap more latency.
	// An append after a quiet spell longer than MinGap is not held; a
	// Flush waits for a hold to end, Close for at most the slice of it
	// being slept (commitlog sleeps holds of up to 1 ms on a precise
	// timer and waits on longer ones so that Close ends them). It is
	// pebble's WAL minimum sync interval. 0: none.
	MinGap time.Duration
	// GapFromRate (syncFlushMinGapFromTps; 0: any rate) is the arrival
	// rate of durable waiters from which MinGap applies (a waiter is a
	// send request: a batch counts once). Below it every round starts as
	// soon as the last sync ends, so a send at a modest rate is answered
	// after its own fdatasync; above it each round's fixed CPU (a device
	// write, a sync, a batch of answers per connection, the wake-ups) is
	// shared by more sends, when that CPU is what a broker runs short of.
	// With a rate, the hold is asked for a HoldSlice at a time and goes on
	// only while each slice sees an arrival.
	GapFromRate float64
}

// Mode implements Policy.
func (Sync) Mode() Mode { return ModeSync }

// Durable implements Policy.
func (Sync) Durable() bool { return true }

// Wait implements Policy.
func (Sync) Wait() Wait { return WaitDurable }

// WaitTimeout implements Policy.
func (s Sync) WaitTimeout() time.Duration { return s.Timeout }

// Visible implements Policy: consumers see only durable records.
func (Sync) Visible(_, durable int64) int64 { return durable }

// Decide implements Policy. Everything written is synced at once (after
// MinGap, at GapFromRate or more), also bytes of appenders that do not
// wait (WAIT=false): under SYNC_FLUSH a consumer only sees durable
// records, so they must not linger unsynced.
func (s Sync) Decide(p Pending) (bool, time.Duration) {
	if p.Waiting || p.Dirty > 0 {
		if p.Since < s.MinGap && p.Rate >= s.GapFromRate && (s.GapFromRate == 0 || (!p.allBack() && (!p.Held || p.Arrived > 0))) {
			hold := s.MinGap - p.Since
			if s.GapFromRate > 0 {
				hold = min(hold, HoldSlice) // then asked again: Held
			}
			return false, hold
		}
		return true, 0
	}
	return false, time.Second
}

// allBack reports whether as many appenders queued since the last synced
// round answered its waiters as it answered.
func (p Pending) allBack() bool { return p.Released > 0 && p.Back >= p.Released }

// HoldSlice is how long Sync holds a round at a time when the hold depends
// on the rate: a hold goes on only while every slice sees a send arrive,
// so a closed loop of synchronous senders, which stop arriving once each
// has sent again, is not held for the whole gap. (A slice measures no
// rate: at 100k sends a second a 50 µs slice sees 5 on average, too few
// to compare with GapFromRate without ending most holds by chance.)
const HoldSlice = 50 * time.Microsecond

// Async is ASYNC_FLUSH: bytes are written promptly and synced every
// Interval when at least LeastBytes are dirty, and at least every Thorough.
// An append waits until its bytes are written (WaitWritten), so that an
// acknowledged send survives a crash of the broker's process, as it does
// in a Java broker's page cache (its default, without
// transientStorePoolEnable).
type Async struct {
	Interval   time.Duration // flushIntervalCommitLog, 500 ms
	LeastBytes int64         // flushCommitLogLeastPages × 4 KiB, 16 KiB
	Thorough   time.Duration // flushCommitLogThoroughInterval, 10 s
	// MaxDirty (mqd only; 0: none) starts a sync as soon as this many
	// bytes are written but not synced, before the interval ends (while
	// one sync runs the next waits for it, so more may be dirty for a
	// sync's time). The log is written through the page cache, and a sync
	// writes back everything dirty in one burst: at 100k msg/s of 1 KiB,
	// 50 MB every 500 ms, whose writeback took the CPU the broker needed
	// and showed as 20-30 ms stalls in its p999 (BENCHMARKS.md, session
	// 13). Bounding the burst spreads the same writeback over more,
	// smaller syncs, which also shortens what a power loss can take.
	MaxDirty int64
	// Timeout bounds an appender's wait (syncFlushTimeout; 0: RocketMQ's
	// 5 s); past it the append reports FLUSH_DISK_TIMEOUT.
	Timeout time.Duration
}

// DefaultAsync is RocketMQ's default asynchronous flush.
var DefaultAsync = Async{Interval: 500 * time.Millisecond, LeastBytes: 4 * 4096, Thorough: 10 * time.Second, MaxDirty: 4 << 20}

// DefaultSync is RocketMQ's default synchronous flush.
var DefaultSync = Sync{Timeout: 5 * time.Second}

// Mode implements Policy.
func (Async) Mode() Mode { return ModeAsync }

// Durable implements Policy.
func (Async) Durable() bool { return false }

// Wait implements Policy.
func (Async) Wait() Wait { return WaitWritten }

// WaitTimeout implements Policy: it bounds the write's wait, and an
// explicit WaitDurable under ASYNC_FLUSH (which the loop serves at once).
func (a Async) WaitTimeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return DefaultSync.Timeout
}

// Visible implements Policy: consumers see what was written.
func (Async) Visible(written, _ int64) int64 { return written }

// Decide implements Policy. An appender that explicitly waits for
// durability is served at once, as under SYNC_FLUSH.
func (a Async) Decide(p Pending) (bool, time.Duration) {
	dirty, since := p.Dirty, p.Since
	if p.Waiting || (dirty > 0 && (since >= a.Thorough || (since >= a.Interval && dirty >= a.LeastBytes))) ||
		(a.MaxDirty > 0 && dirty >= a.MaxDirty) {
		return true, 0
	}
	if since < a.Interval {
		return false, a.Interval - since
	}
	return false, a.Interval
}

// ErrTimeout is returned by Wait when durability took longer than allowed.
// The bytes are in the log and may still become durable.
var ErrTimeout = errors.New("flush: timed out waiting for durability")

// Waiter is one appender waiting for its bytes to become durable: either
// a goroutine blocked in Wait, or a Completer told once (AddAsync).
type Waiter struct {
	End   int64 // log offset the appender needs durable
	done  chan error
	timer *time.Timer
	// An asynchronous waiter: c is told once, by whichever of the release
	// and its queue's expiry first sets the told bit of state, which is
	// gen<<1 | told, gen counting the waiter's asynchronous uses (an
	// expiry entry of an earlier use never matches a recycled waiter).
	c     Completer
	state atomic.Uint64
}

// Completer is told the outcome of an asynchronous wait for end exactly
// once: nil when the bytes below end are durable (or acknowledged, for a
// replication waiter), the owner's error, or ErrTimeout. It runs on the
// goroutine that releases the queue (the commit log's flush loop) or, for
// ErrTimeout, a timer's goroutine, and must not block.
type Completer interface{ Complete(end int64, err error) }

var waiterPool = sync.Pool{New: func() any { return &Waiter{done: make(chan error, 1)} }}

// Wait blocks until the waiter is released or timeout passes. A released
// waiter is recycled; a timed-out one is left to the garbage collector
// because the loop may still release it.
func (w *Waiter) Wait(timeout time.Duration) error {
	if w.timer == nil {
		w.timer = time.NewTimer(timeout)
	} else {
		w.timer.Reset(timeout)
	}
	select {
	case err := <-w.done:
		w.timer.Stop()
		waiterPool.Put(w)
		return err
	case <-w.timer.C:
		return ErrTimeout
	}
}

// release completes the waiter with err. An asynchronous waiter released
// before its expiry is recycled; an expired one is left to the garbage
// collector, because its owner may still hold it (ha forgets expired
// waiters by identity).
func (w *Waiter) release(err error) {
	if w.c == nil {
		w.done <- err
		return
	}
	s := w.state.Load()
	if s&1 != 0 || !w.state.CompareAndSwap(s, s|1) {
		return // expired: its Completer was told
	}
	c, end := w.c, w.End
	w.c = nil
	waiterPool.Put(w) // nothing reads it any more: the expiry sees the told bit
	c.Complete(end, err)
}

// expire tells the waiter's Completer ErrTimeout if use gen is still
// waiting.
func (w *Waiter) expire(gen uint64) {
	if w.state.CompareAndSwap(gen<<1, gen<<1|1) {
		w.c.Complete(w.End, ErrTimeout)
	}
}

// Queue is the list of waiters, in append (offset) order. Its owner guards
// it with the same lock that orders appends, so taking the queue and reading
// the log tail under that lock gives a tail at or past every taken waiter.
type Queue struct {
	ws       []*Waiter
	expiry   expiryList // asynchronous waiters' deadlines (expiry.go)
	arrivals uint64     // waiters ever added
}

// Add queues a waiter for offset end.
func (q *Queue) Add(end int64) *Waiter {
	w := waiterPool.Get().(*Waiter)
	w.End = end
	q.ws = append(q.ws, w)
	q.arrivals++
	return w
}

// AddAsync queues an asynchronous waiter for offset end: instead of a
// goroutine blocking in Wait, c is told the outcome once, ErrTimeout when
// the release has not come within timeout. The waiter is returned for
// identity only (an owner that forgets expired waiters): once c is told,
// it may already be recycled for another wait.
func (q *Queue) AddAsync(end int64, timeout time.Duration, c Completer) *Waiter {
	return q.AddAsyncAt(end, time.Now(), timeout, c)
}

// AddAsyncAt is AddAsync for a caller that has just read the clock (now):
// the waiter expires at now+timeout (the commit log's append reads it
// once for the record's timestamp and the deadline).
func (q *Queue) AddAsyncAt(end int64, now time.Time, timeout time.Duration, c Completer) *Waiter {
	w := waiterPool.Get().(*Waiter)
	gen := w.state.Load()>>1 + 1
	w.End, w.c = end, c
	w.state.Store(gen << 1)
	q.expiry.add(w, gen, now.Add(timeout), timeout)
	q.ws = append(q.ws, w)
	q.arrivals++
	return w
}

// Len is the number of queued waiters.
func (q *Queue) Len() int { return len(q.ws) }

// Arrivals is the number of waiters ever added (Requeue adds none).
func (q *Queue) Arrivals() uint64 { return q.arrivals }

// Take removes and returns every queued waiter; spare is reused as the new
// backing slice so the steady state does not allocate.
func (q *Queue) Take(spare []*Waiter) []*Waiter {
	ws := q.ws
	q.ws = spare[:0]
	return ws
}

// TakeThrough removes the queued waiters whose End is at most upTo,
// appending them to dst in queue order, and keeps the others queued in
// order, in place (a queue not in offset order, like a replication
// server's, is filtered without copying what stays).
func (q *Queue) TakeThrough(upTo int64, dst []*Waiter) []*Waiter {
	kept := q.ws[:0]
	for _, w := range q.ws {
		if w.End <= upTo {
			dst = append(dst, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(q.ws[len(kept):])
	q.ws = kept
	return dst
}

// Requeue puts ws (taken earlier, so older than every queued waiter) back
// at the head of the queue. ws must not share the queue's backing array
// (Take hands that out and installs the spare). In place when the queue's
// backing array has room, so that a loop requeueing what it took every
// round (the commit log's, while a sync is in flight) does not allocate.
func (q *Queue) Requeue(ws []*Waiter) {
	n, m := len(q.ws), len(ws)
	if cap(q.ws) < n+m {
		q.ws = append(append(make([]*Waiter, 0, 2*(n+m)), ws...), q.ws...)
		return
	}
	q.ws = q.ws[:n+m]
	copy(q.ws[m:], q.ws[:n])
	copy(q.ws, ws)
}

// Release completes every waiter in ws: those with End ≤ durable get nil
// when err is nil; all get err when err is not nil. Waiters beyond durable
// with a nil err are returned so the caller can queue them again.
func Release(ws []*Waiter, durable int64, err error) (rest []*Waiter) {
	for i, w := range ws {
		if err == nil && w.End > durable {
			return ws[i:]
		}
		w.release(err)
	}
	return nil
}
