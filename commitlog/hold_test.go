package commitlog

import (
	"math"
	"testing"
	"time"
)

// The arrival rate is measured over windows of at least rateWindow (over a
// quiet spell as a whole), and right after a hold over the hold alone.
func TestArrivalRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := arrivalRate{winAt: t0}
	near := func(want float64) {
		t.Helper()
		if got := r.rate(); math.Abs(got-want) > want*1e-9 {
			t.Fatalf("rate %v, want %v", got, want)
		}
	}
	r.note(500, t0.Add(5*time.Millisecond)) // inside the first window: not yet
	near(0)
	r.note(1000, t0.Add(rateWindow)) // 1,000 in 10 ms
	near(100_000)
	r.note(1001, t0.Add(rateWindow+time.Second)) // a quiet second
	near(1)

	at := t0.Add(rateWindow + time.Second + time.Millisecond)
	r.holdFrom(1001, at)
	r.note(1003, at.Add(100*time.Microsecond)) // a hold of 100 µs, 2 arrivals
	near(20_000)
	r.note(1003, at.Add(200*time.Microsecond)) // after the round that ended it: the window again
	near(1)
	r.note(1003+1000, at.Add(rateWindow)) // 1,002 in the 11 ms since the window began, at the quiet second's end
	if got, want := r.rate(), 1002/(rateWindow+time.Millisecond).Seconds(); math.Abs(got-want) > 1e-6*want {
		t.Fatalf("rate %v, want %v", got, want)
	}
}

// A hold in the kernel lasts about what was asked, not the ~1 ms to which
// Go rounds a short timer in an otherwise idle process.
func TestHoldInKernel(t *testing.T) {
	shortest := time.Hour
	for range 20 {
		t0 := time.Now()
		holdInKernel(100 * time.Microsecond)
		shortest = min(shortest, time.Since(t0))
	}
	if shortest < 100*time.Microsecond || shortest > 700*time.Microsecond {
		t.Fatalf("the shortest of 20 holds of 100 µs took %v", shortest)
	}
}
