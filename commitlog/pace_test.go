package commitlog

import (
	"testing"
	"time"
)

// TestPacer: a step is followed by three times its length (at least the
// minimum), nothing once the appends are near the segment, nothing in
// Open's unpaced preparation; a closed stop is reported.
func TestPacer(t *testing.T) {
	urgent := false
	p := pacer{stop: make(chan struct{}), urgent: func() bool { return urgent }}
	if got := p.pauseAfter(40 * time.Millisecond); got != 120*time.Millisecond {
		t.Fatalf("pause after 40ms = %v, want 120ms", got)
	}
	if got := p.pauseAfter(0); got != preparePauseMin {
		t.Fatalf("pause after 0 = %v, want %v", got, preparePauseMin)
	}
	urgent = true
	if got := p.pauseAfter(time.Second); got != 0 {
		t.Fatalf("urgent pause = %v, want 0", got)
	}
	ran := 0
	if (pacer{}).step(func() { ran++ }) || ran != 1 {
		t.Fatal("unpaced step")
	}
	stop := make(chan struct{})
	close(stop)
	if !(pacer{stop: stop}).step(func() { ran++ }) || ran != 2 {
		t.Fatal("a closed stop is not reported after the step ran")
	}
	if !(pacer{stop: stop, urgent: func() bool { return true }}).step(func() {}) {
		t.Fatal("a closed stop is not reported when urgent")
	}
}

// TestPacerUrgentNearSegment: the log's pacer turns urgent while someone
// waits for the segment being prepared, and when the bytes written come
// within a quarter segment of it.
func TestPacerUrgentNearSegment(t *testing.T) {
	l := &Log{cfg: Config{SegmentSize: 1000}}
	p := l.pacer(2000, make(chan struct{}))
	l.written.Store(1000)
	if p.urgent() {
		t.Fatal("urgent a whole segment ahead")
	}
	l.hurry.Add(1)
	if !p.urgent() {
		t.Fatal("not urgent while someone waits for the segment")
	}
	l.hurry.Add(-1)
	l.written.Store(1751)
	if !p.urgent() {
		t.Fatal("not urgent within a quarter segment")
	}
}
