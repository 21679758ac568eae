package commitlog

import (
	"log/slog"
	"math"
	"testing"
	"time"
)

// The arrival rate is measured over windows of at least rateWindow (over a
// quiet spell as a whole), and the arrivals during a hold are counted for
// the note right after it.
func TestArrivalRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := arrivalRate{winAt: t0}
	near := func(want float64) {
		t.Helper()
		if math.Abs(r.win-want) > want*1e-9 {
			t.Fatalf("rate %v, want %v", r.win, want)
		}
	}
	r.note(500, t0.Add(5*time.Millisecond)) // inside the first window: not yet
	near(0)
	r.note(1000, t0.Add(rateWindow)) // 1,000 in 10 ms
	near(100_000)
	r.note(1001, t0.Add(rateWindow+time.Second)) // a quiet second
	near(1)
	if r.afterHold {
		t.Fatal("no hold was slept")
	}

	at := t0.Add(rateWindow + time.Second + time.Millisecond)
	r.holdFrom(1001)
	r.note(1003, at.Add(50*time.Microsecond)) // two arrived during the hold
	if !r.afterHold || r.arrived != 2 {
		t.Fatalf("after a hold: %v, %d arrived", r.afterHold, r.arrived)
	}
	near(1) // the window goes on
	r.note(1003, at.Add(100*time.Microsecond))
	if r.afterHold {
		t.Fatal("the note after the round that ended the hold still reports it")
	}
	r.note(1003+1000, at.Add(rateWindow)) // 1,002 in the 11 ms since the quiet second's end
	near(1002 / (rateWindow + time.Millisecond).Seconds())
}

// The hold timer sleeps about what was asked, not the ~1 ms to which Go
// rounds a short timer in an otherwise idle process; it opens its timerfd
// on the first hold only, and closed it still sleeps.
func TestHoldTimer(t *testing.T) {
	h := holdTimer{log: slog.Default()}
	if h.f != nil {
		t.Fatal("a timerfd before any hold")
	}
	shortest := time.Hour
	for range 20 {
		t0 := time.Now()
		h.sleep(100 * time.Microsecond)
		shortest = min(shortest, time.Since(t0))
	}
	if h.f == nil {
		t.Fatal("no timerfd after a hold")
	}
	if shortest < 100*time.Microsecond || shortest > 700*time.Microsecond {
		t.Fatalf("the shortest of 20 holds of 100 µs took %v", shortest)
	}
	h.close()
	t0 := time.Now()
	h.sleep(2 * time.Millisecond)
	if took := time.Since(t0); took < 2*time.Millisecond {
		t.Fatalf("a hold of 2 ms without the timerfd took %v", took)
	}
	h.sleep(0) // returns at once
}
