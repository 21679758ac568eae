package flush

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestSyncDecide(t *testing.T) {
	s := DefaultSync
	if ok, _ := s.Decide(Pending{Dirty: 100, Since: 0, Waiting: true}); !ok {
		t.Fatal("waiter present: must sync")
	}
	if ok, _ := s.Decide(Pending{Dirty: 100, Since: 0, Waiting: false}); !ok {
		t.Fatal("unsynced WAIT=false bytes must not linger: consumers only see durable records")
	}
	if ok, sleep := s.Decide(Pending{Dirty: 0, Since: 0, Waiting: false}); ok || sleep <= 0 {
		t.Fatal("nothing to do: sleep")
	}
	if ok, _ := s.Decide(Pending{Dirty: 0, Since: time.Hour, Waiting: false}); ok {
		t.Fatal("nothing dirty")
	}
	if !s.Durable() || DefaultAsync.Durable() {
		t.Fatal("Durable")
	}
}

func TestSyncMinGapDecide(t *testing.T) {
	s := Sync{Timeout: time.Second, MinGap: time.Millisecond}
	if ok, hold := s.Decide(Pending{Dirty: 100, Since: 300 * time.Microsecond, Waiting: true}); ok || hold != 700*time.Microsecond {
		t.Fatalf("inside the gap: sync %v, hold %v; want a hold of the rest of the gap", ok, hold)
	}
	if ok, _ := s.Decide(Pending{Dirty: 100, Since: time.Millisecond, Waiting: true}); !ok {
		t.Fatal("gap over, waiter present: must sync")
	}
	if ok, _ := s.Decide(Pending{Dirty: 100, Since: 2 * time.Millisecond}); !ok {
		t.Fatal("gap over, WAIT=false bytes: must sync")
	}
	if ok, sleep := s.Decide(Pending{}); ok || sleep != time.Second {
		t.Fatalf("nothing to do: sync %v, sleep %v; want the idle sleep, not a hold", ok, sleep)
	}
}

// TestSyncGapFromRate: the gap holds a round only while durable waiters
// arrive at GapFromRate a second or more, one HoldSlice at a time, each
// after the first only if a waiter arrived during the last.
func TestSyncGapFromRate(t *testing.T) {
	s := Sync{Timeout: time.Second, MinGap: time.Millisecond, GapFromRate: 60_000}
	inGap := Pending{Dirty: 100, Since: 300 * time.Microsecond, Waiting: true}
	for _, c := range []struct {
		rate float64
		hold bool
	}{{0, false}, {10_000, false}, {59_999, false}, {60_000, true}, {200_000, true}} {
		inGap.Rate = c.rate
		ok, sleep := s.Decide(inGap)
		if held := !ok && sleep == HoldSlice; held != c.hold || ok == c.hold {
			t.Errorf("rate %v: sync %v, sleep %v; want a hold (of one HoldSlice) %v", c.rate, ok, sleep, c.hold)
		}
	}
	// the last slice of the gap is only what is left of it
	if ok, sleep := s.Decide(Pending{Dirty: 100, Since: time.Millisecond - HoldSlice/2, Waiting: true, Rate: 1e6}); ok || sleep != HoldSlice/2 {
		t.Errorf("end of the gap: sync %v, sleep %v; want a hold of %v", ok, sleep, HoldSlice/2)
	}
	// after a slice, the hold goes on only if a send arrived during it
	inGap.Rate, inGap.Held = 200_000, true
	if ok, sleep := s.Decide(inGap); !ok || sleep != 0 {
		t.Errorf("a slice with no arrival: sync %v, sleep %v; want the round", ok, sleep)
	}
	inGap.Arrived = 1
	if ok, sleep := s.Decide(inGap); ok || sleep != HoldSlice {
		t.Errorf("a slice with an arrival: sync %v, sleep %v; want another slice", ok, sleep)
	}
	// without a rate the gap is held whole, arrivals or not
	always := Sync{Timeout: time.Second, MinGap: time.Millisecond}
	if ok, sleep := always.Decide(Pending{Dirty: 100, Since: 300 * time.Microsecond, Waiting: true, Held: true}); ok || sleep != 700*time.Microsecond {
		t.Errorf("GapFromRate 0 after a hold: sync %v, sleep %v; want the rest of the gap", ok, sleep)
	}
	past := Pending{Dirty: 100, Since: 2 * time.Millisecond, Waiting: true, Rate: 200_000}
	if ok, _ := s.Decide(past); !ok {
		t.Fatal("gap over at a high rate: must sync")
	}
}

// A hold at a rate ends once as many senders queued since the last
// synced round answered its waiters as it answered: a closed loop of
// synchronous senders has then sent again, every one. Without a rate the
// gap is held whole as before.
func TestSyncHoldEndsWhenAllAreBack(t *testing.T) {
	s := Sync{Timeout: time.Second, MinGap: time.Millisecond, GapFromRate: 60_000}
	for _, c := range []struct {
		held           bool
		arrived        uint64
		released, back uint64
		hold           bool
	}{
		{false, 0, 64, 10, true},  // first slice: 10 of 64 back
		{false, 0, 64, 64, false}, // all back before the hold began: no hold
		{true, 5, 64, 63, true},   // one still out
		{true, 5, 64, 64, false},  // all back
		{true, 5, 64, 90, false},  // more than answered (an open loop: the round grows)
		{true, 5, 0, 90, true},    // nothing answered yet: the rate alone decides
	} {
		p := Pending{Dirty: 100, Since: 300 * time.Microsecond, Waiting: true, Rate: 200_000,
			Held: c.held, Arrived: c.arrived, Released: c.released, Back: c.back}
		ok, sleep := s.Decide(p)
		if held := !ok && sleep == HoldSlice; held != c.hold || ok == c.hold {
			t.Errorf("%+v: sync %v, sleep %v; want a hold %v", c, ok, sleep, c.hold)
		}
	}
	always := Sync{Timeout: time.Second, MinGap: time.Millisecond}
	p := Pending{Dirty: 100, Since: 300 * time.Microsecond, Waiting: true, Held: true, Released: 64, Back: 64}
	if ok, sleep := always.Decide(p); ok || sleep != 700*time.Microsecond {
		t.Errorf("GapFromRate 0, all back: sync %v, sleep %v; want the rest of the gap", ok, sleep)
	}
}

func TestAsyncDecide(t *testing.T) {
	a := DefaultAsync
	cases := []struct {
		dirty int64
		since time.Duration
		want  bool
	}{
		{0, time.Minute, false},
		{4096, 600 * time.Millisecond, false},     // below 4 pages
		{4 * 4096, 600 * time.Millisecond, true},  // interval and pages
		{4 * 4096, 100 * time.Millisecond, false}, // before the interval
		{1, 11 * time.Second, true},               // thorough
		{1 << 20, 499 * time.Millisecond, false},  // interval rules below MaxDirty
		{4 << 20, time.Millisecond, true},         // MaxDirty bounds a sync's burst
	}
	for _, c := range cases {
		got, sleep := a.Decide(Pending{Dirty: c.dirty, Since: c.since, Waiting: false})
		if got != c.want {
			t.Errorf("Decide(%d, %v) = %v", c.dirty, c.since, got)
		}
		if !got && sleep <= 0 {
			t.Errorf("Decide(%d, %v): sleep %v", c.dirty, c.since, sleep)
		}
	}
}

func TestQueueReleaseInOrder(t *testing.T) {
	var q Queue
	a, b, c := q.Add(10), q.Add(20), q.Add(30)
	ws := q.Take(nil)
	if q.Len() != 0 || len(ws) != 3 {
		t.Fatal("take")
	}
	rest := Release(ws, 20, nil)
	if len(rest) != 1 || rest[0] != c {
		t.Fatal("rest")
	}
	for _, w := range []*Waiter{a, b} {
		if err := w.Wait(time.Second); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	Release(rest, 0, boom)
	if err := c.Wait(time.Second); !errors.Is(err, boom) {
		t.Fatal(err)
	}
}

func TestWaitTimeout(t *testing.T) {
	var q Queue
	w := q.Add(1)
	if err := w.Wait(5 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatal(err)
	}
	// A late release of an abandoned waiter must not block or panic.
	Release(q.Take(nil), 1, nil)
}

func TestWaiterRecycleAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	var q Queue
	spare := make([]*Waiter, 0, 4)
	allocs := testing.AllocsPerRun(200, func() {
		w := q.Add(1)
		ws := q.Take(spare)
		spare = ws
		Release(ws, 1, nil)
		_ = w.Wait(time.Second)
	})
	if allocs > 0 {
		t.Fatalf("%v allocs per wait", allocs)
	}
}

func TestPolicyCarriesWaitTimeoutAndVisibility(t *testing.T) {
	s, a := Sync{Timeout: 3 * time.Second}, DefaultAsync
	if s.Wait() != WaitDurable || a.Wait() != WaitWritten {
		t.Fatal("default waits")
	}
	if s.WaitTimeout() != 3*time.Second || a.WaitTimeout() <= 0 {
		t.Fatal("timeouts")
	}
	if s.Visible(100, 40) != 40 || a.Visible(100, 40) != 100 {
		t.Fatal("SYNC shows durable records, ASYNC written ones")
	}
	if s.Mode() != ModeSync || a.Mode() != ModeAsync || ModeUnknown.String() != "unknown" {
		t.Fatal("modes")
	}
	if ok, _ := a.Decide(Pending{Dirty: 1, Since: 0, Waiting: true}); !ok {
		t.Fatal("an explicit durable wait under ASYNC must sync at once")
	}
}

// outcome records what an asynchronous waiter's Completer was told.
type outcome struct {
	mu   sync.Mutex
	errs []error
	ends []int64
	got  chan struct{}
}

func newOutcome() *outcome { return &outcome{got: make(chan struct{}, 16)} }

func (o *outcome) Complete(end int64, err error) {
	o.mu.Lock()
	o.errs = append(o.errs, err)
	o.ends = append(o.ends, end)
	o.mu.Unlock()
	o.got <- struct{}{}
}

func (o *outcome) told() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]error(nil), o.errs...)
}

// Asynchronous waiters are told once, in order with the blocking ones:
// durable ones nil, the rest the loop's error.
func TestAsyncWaitersReleased(t *testing.T) {
	var q Queue
	a, b, c := newOutcome(), newOutcome(), newOutcome()
	q.AddAsync(10, time.Minute, a)
	w := q.Add(20)
	q.AddAsync(30, time.Minute, b)
	q.AddAsync(40, time.Minute, c)
	rest := Release(q.Take(nil), 30, nil)
	if len(rest) != 1 {
		t.Fatalf("%d waiters left, want 1", len(rest))
	}
	if err := w.Wait(time.Second); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	Release(rest, 0, boom)
	for _, tc := range []struct {
		o    *outcome
		want error
	}{{a, nil}, {b, nil}, {c, boom}} {
		if got := tc.o.told(); len(got) != 1 || !errors.Is(got[0], tc.want) {
			t.Fatalf("told %v, want once %v", got, tc.want)
		}
	}
	for _, tc := range []struct {
		o   *outcome
		end int64
	}{{a, 10}, {b, 30}, {c, 40}} {
		if tc.o.ends[0] != tc.end {
			t.Fatalf("told end %d, want the waiter's %d", tc.o.ends[0], tc.end)
		}
	}
}

// An asynchronous waiter not released within its timeout is told
// ErrTimeout, once: the late release tells it nothing more.
func TestAsyncWaiterTimeout(t *testing.T) {
	var q Queue
	o := newOutcome()
	q.AddAsync(7, 5*time.Millisecond, o)
	select {
	case <-o.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no timeout")
	}
	Release(q.Take(nil), 7, nil)
	if got := o.told(); len(got) != 1 || !errors.Is(got[0], ErrTimeout) || o.ends[0] != 7 {
		t.Fatalf("told %v at %v, want once ErrTimeout at 7", got, o.ends)
	}
}

// Release and expiry racing: every waiter is told exactly once, and
// recycled waiters never tell a later Completer an old outcome.
func TestAsyncWaiterReleaseRacesExpiry(t *testing.T) {
	var q Queue
	const n = 2000
	outs := make([]*outcome, n)
	for i := range outs {
		outs[i] = newOutcome()
		q.AddAsync(int64(i), time.Duration(i%50)*time.Microsecond, outs[i])
		if i%7 == 0 {
			Release(q.Take(nil), int64(i), nil)
		}
	}
	Release(q.Take(nil), n, nil)
	for i, o := range outs {
		select {
		case <-o.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("waiter %d never told", i)
		}
	}
	time.Sleep(10 * time.Millisecond) // any second telling would land now
	for i, o := range outs {
		if got := o.told(); len(got) != 1 || (got[0] != nil && !errors.Is(got[0], ErrTimeout)) {
			t.Fatalf("waiter %d told %v", i, got)
		}
	}
}

func TestAsyncWaiterRecycleAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	var q Queue
	spare := make([]*Waiter, 0, 4)
	var o counted
	allocs := testing.AllocsPerRun(200, func() {
		q.AddAsync(1, time.Minute, &o)
		ws := q.Take(spare)
		spare = ws
		Release(ws, 1, nil)
	})
	if allocs > 0 || o.n != 201 {
		t.Fatalf("%v allocs per asynchronous wait, %d told", allocs, o.n)
	}
}

// counted is a Completer that counts (single goroutine).
type counted struct{ n int }

func (c *counted) Complete(int64, error) { c.n++ }

// TakeThrough takes the covered waiters in queue order and keeps the rest
// queued in order, whatever order the ends come in.
func TestTakeThrough(t *testing.T) {
	var q Queue
	for _, end := range []int64{30, 10, 50, 20, 40} {
		q.Add(end)
	}
	got := q.TakeThrough(30, nil)
	ends := func(ws []*Waiter) (out []int64) {
		for _, w := range ws {
			out = append(out, w.End)
		}
		return out
	}
	if e := ends(got); !slices.Equal(e, []int64{30, 10, 20}) {
		t.Fatalf("took %v, want [30 10 20]", e)
	}
	q.Add(60)
	if e := ends(q.Take(nil)); !slices.Equal(e, []int64{50, 40, 60}) {
		t.Fatalf("kept %v, want [50 40 60]", e)
	}
}

// Requeue puts what was taken back ahead of what was queued since, in
// order, and reuses the queue's spare array when it has room: the commit
// log's loop requeues what it took every round while a sync is in flight.
func TestRequeueOrderAndAllocs(t *testing.T) {
	var q Queue
	ends := func(ws []*Waiter) (out []int64) {
		for _, w := range ws {
			out = append(out, w.End)
		}
		return out
	}
	q.Add(1)
	q.Add(2)
	taken := q.Take(make([]*Waiter, 0, 8))
	q.Add(3)
	q.Requeue(taken)
	if e := ends(q.Take(nil)); !slices.Equal(e, []int64{1, 2, 3}) {
		t.Fatalf("after requeue %v, want [1 2 3]", e)
	}
	q.Add(4) // nil spare: the queue grows a new array
	q.Requeue(taken[:1])
	if e := ends(q.Take(nil)); !slices.Equal(e, []int64{1, 4}) {
		t.Fatalf("after requeue into a grown queue %v, want [1 4]", e)
	}
	if raceEnabled {
		return
	}
	q.Take(make([]*Waiter, 0, 8)) // the queue's array now has room
	ws := []*Waiter{{End: 7}, {End: 8}}
	allocs := testing.AllocsPerRun(200, func() {
		q.Requeue(ws)
		if q.Len() != 2 {
			t.Fatalf("%d queued, want 2", q.Len())
		}
		q.Take(q.ws) // empties the queue, keeping its array
	})
	if allocs > 0 {
		t.Fatalf("%v allocs per requeue", allocs)
	}
}
