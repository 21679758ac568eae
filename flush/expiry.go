package flush

import (
	"sync"
	"time"
)

// expiryList holds a queue's asynchronous waiters' deadlines, in the order
// they were added, behind one timer for the whole queue (issue 14: a
// timer per waiter, reset and stopped for every send, cost ~3% of the
// broker's CPU at 100k msg/s). Its own lock, not the queue owner's, guards
// it: the timer runs without the owner's lock, and a Completer may take
// that lock (ha drops expired waiters under its own), so Completers are
// told after this lock is released.
//
// Entries of waiters told already (released, or recycled for another use)
// are dropped from the head as new ones are added, so with releases in
// offset order the list holds about the waiters still waiting; the rest
// are dropped when the timer fires. The timer is armed for the earliest
// deadline it knows of and re-armed from what remains when it fires, so a
// queue whose waiters are all released in time fires about once per
// timeout.
type expiryList struct {
	mu    sync.Mutex
	es    []expiryEntry // es[head:] are live or not yet dropped
	head  int
	timer *time.Timer
	armed time.Time // the deadline the timer is set for; zero: not set
}

type expiryEntry struct {
	w        *Waiter
	gen      uint64
	deadline time.Time
}

// waiting reports whether the entry's use of its waiter is still waiting.
func (e *expiryEntry) waiting() bool { return e.w.state.Load() == e.gen<<1 }

// add lists w's use gen, which expires at deadline, timeout from now.
func (l *expiryList) add(w *Waiter, gen uint64, deadline time.Time, timeout time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trim()
	l.es = append(l.es, expiryEntry{w: w, gen: gen, deadline: deadline})
	switch {
	case l.timer == nil:
		l.timer = time.AfterFunc(timeout, l.fire)
		l.armed = deadline
	case l.armed.IsZero() || deadline.Before(l.armed):
		l.timer.Reset(timeout)
		l.armed = deadline
	}
}

// trim drops told entries from the head and compacts the list once most
// of it is dropped. Called with mu held.
func (l *expiryList) trim() {
	for l.head < len(l.es) && !l.es[l.head].waiting() {
		l.es[l.head] = expiryEntry{}
		l.head++
	}
	switch {
	case l.head == len(l.es):
		l.es, l.head = l.es[:0], 0
	case l.head >= 64 && 2*l.head >= len(l.es):
		n := copy(l.es, l.es[l.head:])
		clear(l.es[n:])
		l.es, l.head = l.es[:n], 0
	}
}

// fire tells the waiters whose deadline passed ErrTimeout, drops told
// entries and re-arms the timer for the earliest deadline left.
func (l *expiryList) fire() {
	var expired []expiryEntry
	l.mu.Lock()
	now := time.Now()
	kept := l.es[:0]
	var next time.Time
	for _, e := range l.es[l.head:] {
		switch {
		case !e.waiting():
		case !e.deadline.After(now):
			expired = append(expired, e)
		default:
			kept = append(kept, e)
			if next.IsZero() || e.deadline.Before(next) {
				next = e.deadline
			}
		}
	}
	clear(l.es[len(kept):])
	l.es, l.head, l.armed = kept, 0, next
	if !next.IsZero() {
		l.timer.Reset(next.Sub(now))
	}
	l.mu.Unlock()
	for _, e := range expired {
		e.w.expire(e.gen)
	}
}
