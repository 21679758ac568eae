package stat

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	var h Histogram
	h.Observe(10 * time.Microsecond)
	h.Observe(3 * time.Millisecond)
	h.Observe(time.Minute)
	s := h.Snapshot()
	if s.Count != 3 || s.Cumulative[0] != 1 || s.Cumulative[len(Bounds)-1] != 2 || s.Sum != time.Minute+3010*time.Microsecond {
		t.Fatalf("%+v", s)
	}
	if got := s.Cumulative[6]; got != 2 { // 5 ms bound
		t.Fatalf("5ms bucket %d", got)
	}
	if n := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond) }); n != 0 {
		t.Fatalf("Observe allocates %v", n)
	}
}
