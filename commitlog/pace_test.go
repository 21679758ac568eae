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
	if got := p.pauseAfter(20 * time.Millisecond); got != 60*time.Millisecond {
		t.Fatalf("pause after 20ms = %v, want 60ms", got)
	}
	if got := p.pauseAfter(time.Second); got != preparePauseMax {
		t.Fatalf("pause after 1s = %v, want the cap %v", got, preparePauseMax)
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

// TestPacerPauseEndsEarly: a pause under way ends when someone starts
// waiting for the segment (wake) or the segment becomes urgent.
func TestPacerPauseEndsEarly(t *testing.T) {
	l := &Log{cfg: Config{SegmentSize: 1 << 30}, wake: make(chan struct{}, 1)}
	p := l.pacer(4<<30, make(chan struct{}))
	go func() { time.Sleep(50 * time.Millisecond); l.hurryUp() }()
	t0 := time.Now()
	if p.pause(time.Minute) {
		t.Fatal("reported stopped")
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Fatalf("a waiter did not end the pause (%v)", d)
	}
	l.hurry.Store(0)
	go func() { time.Sleep(50 * time.Millisecond); l.written.Store(4<<30 - 1) }()
	t0 = time.Now()
	p.pause(time.Minute)
	if d := time.Since(t0); d > 30*time.Second {
		t.Fatalf("urgency did not end the pause (%v)", d)
	}
}

// TestPacerUrgentNearSegment: the log's pacer turns urgent while someone
// waits for the segment being prepared, and when the bytes written come
// within half a segment of it.
func TestPacerUrgentNearSegment(t *testing.T) {
	l := &Log{cfg: Config{SegmentSize: 1000}}
	p := l.pacer(2000, make(chan struct{}))
	l.written.Store(1499)
	if p.urgent() {
		t.Fatal("urgent more than half a segment ahead")
	}
	l.hurry.Add(1)
	if !p.urgent() {
		t.Fatal("not urgent while someone waits for the segment")
	}
	l.hurry.Add(-1)
	l.written.Store(1501)
	if !p.urgent() {
		t.Fatal("not urgent within half a segment")
	}
}
