package flush

import (
	"errors"
	"testing"
	"time"
)

// Waiters released in order keep the expiry list about as long as the
// waiters still waiting, and the one timer is never reset for them.
func TestExpiryListStaysShort(t *testing.T) {
	var q Queue
	var o counted
	for i := range 10000 {
		q.AddAsync(int64(i), time.Minute, &o)
		if i%10 == 9 {
			Release(q.Take(nil), int64(i), nil)
		}
		if n := len(q.expiry.es) - q.expiry.head; n > 11 {
			t.Fatalf("after %d waiters (10 at most waiting) the expiry list holds %d", i+1, n)
		}
	}
	if o.n != 10000 {
		t.Fatalf("%d told, want 10000", o.n)
	}
}

// A waiter with a shorter timeout than those before it still expires by
// its own deadline: the timer is re-armed for it.
func TestExpiryEarlierDeadlineRearms(t *testing.T) {
	var q Queue
	slow, fast := newOutcome(), newOutcome()
	q.AddAsync(1, time.Hour, slow)
	start := time.Now()
	q.AddAsync(2, 20*time.Millisecond, fast)
	select {
	case <-fast.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the 20 ms waiter behind a 1 h one never expired")
	}
	if got := fast.told(); len(got) != 1 || !errors.Is(got[0], ErrTimeout) {
		t.Fatalf("fast waiter told %v", got)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("expired after %v, before its deadline", waited)
	}
	if len(slow.told()) != 0 {
		t.Fatal("the 1 h waiter was told")
	}
	Release(q.Take(nil), 2, nil)
	if got := slow.told(); len(got) != 1 || got[0] != nil {
		t.Fatalf("slow waiter told %v on release", got)
	}
}

// Waiters left waiting all expire, in several timer firings, each told
// once; one released in between is not told a timeout.
func TestExpiryManyDeadlines(t *testing.T) {
	var q Queue
	outs := make([]*outcome, 30)
	for i := range outs {
		outs[i] = newOutcome()
		q.AddAsync(int64(i), time.Duration(i)*time.Millisecond, outs[i])
		if i == 20 {
			Release(q.TakeThrough(20, nil)[20:], 20, nil)
		}
	}
	for i, o := range outs {
		select {
		case <-o.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("waiter %d never told", i)
		}
	}
	time.Sleep(20 * time.Millisecond)
	for i, o := range outs {
		got := o.told()
		want := ErrTimeout
		if i == 20 {
			want = nil
		}
		if len(got) != 1 || !errors.Is(got[0], want) {
			t.Fatalf("waiter %d told %v, want once %v", i, got, want)
		}
	}
}
