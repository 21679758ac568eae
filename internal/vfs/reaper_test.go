package vfs

import (
	"slices"
	"testing"
)

// TestReapPause: the pause shrinks so that the queue is freed within
// about reapBudget, and is zero while space is short.
func TestReapPause(t *testing.T) {
	short := false
	r := NewReaper(make(chan struct{}), func() bool { return short })
	if got := r.pause(); got != reapPause {
		t.Fatalf("pause with nothing queued %v, want %v", got, reapPause)
	}
	r.steps = 1000 // ~62 GiB queued
	if got := r.pause(); got != reapBudget/1000 {
		t.Fatalf("pause with 1000 steps queued %v, want %v", got, reapBudget/1000)
	}
	short = true
	if got := r.pause(); got != 0 {
		t.Fatalf("pause while space is short %v, want 0", got)
	}
}

// TestReaperTruncatesInSteps: a queued file is truncated ReapStep at a
// time down to nothing, then it and the other handles are closed; once
// stop is closed, what is queued closes at once, untruncated.
func TestReaperTruncatesInSteps(t *testing.T) {
	fs := Default()
	open := func(name string, size int64) File {
		f, err := fs.Open(t.TempDir()+"/"+name, Create)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		return f
	}
	stop := make(chan struct{})
	r := NewReaper(stop, nil)
	var sizes []int64
	r.Truncated = func(_ File, size int64) { sizes = append(sizes, size) }
	w, other := open("a", 3*ReapStep+1), open("b", 10)
	r.Add(w, other)
	r.Wait()
	if want := []int64{2*ReapStep + 1, ReapStep + 1, 1, 0}; !slices.Equal(sizes, want) {
		t.Fatalf("truncated through %v, want %v", sizes, want)
	}
	for _, f := range []File{w, other} {
		if _, err := f.Size(); err == nil {
			t.Fatalf("%s still open after its reaping", f.Name())
		}
	}
	close(stop)
	sizes = nil
	late := open("c", 2*ReapStep)
	r.Add(late)
	r.Wait()
	if len(sizes) != 0 {
		t.Fatalf("truncated %v after stop, want closed at once", sizes)
	}
	if _, err := late.Size(); err == nil {
		t.Fatal("file queued after stop still open")
	}
}
