package vfs

import (
	"sync"
	"time"
)

// Freeing a removed file's space stalls the fdatasyncs of every file on
// the file system: ext4 frees the extents in one transaction when the
// last descriptor closes, and 1 GiB of them held a SYNC_FLUSH commit
// log's syncs for ~100 ms on this VM's disk (issue 14: retention removing
// 6 segments at once made 534 and 822 ms p99 seconds at 100k msg/s); one
// full 420 MB index file held a 1 KiB write+fdatasync loop for 31 and
// 39 ms, and 11 ms at most when truncated in these steps. So the storage
// packages hand a removed file, once unlinked (the unlink durable) and
// released by its last reader, to a Reaper: one goroutine truncates it to
// nothing in steps of ReapStep, reapPause apart, before it closes, so the
// space goes back a little at a time, as the Java broker spaces its
// deletions (deletePhysicFilesInterval). One Reaper serves the commit log
// and the index (engine), so their truncations never overlap.
//
// The pauses shrink with the queue, so that freeing what is queued takes
// at most about reapBudget beyond the truncations themselves (retention
// decides on free space and runs every 10 s; 10 forced segments take
// ~3.2 s), and stop while space is short (urgent).
const (
	ReapStep   = 64 << 20
	reapPause  = 20 * time.Millisecond
	reapBudget = 2 * time.Second
)

// Reaper truncates and closes removed files, one group at a time.
type Reaper struct {
	mu      sync.Mutex
	queue   [][]File // each: the handles of one removed file; [0] writable
	running bool
	idle    *sync.Cond      // signalled when running ends
	stop    <-chan struct{} // the owner's: once closed, files close at once
	urgent  func() bool     // no pauses while it reports true (space is short)
	steps   int64           // truncation steps queued and under way (mu)
	// Truncated, when a test sets it before the first Add, is told each
	// truncation.
	Truncated func(f File, size int64)
}

// NewReaper returns a Reaper that pauses between steps until stop closes
// (then what is queued closes at once), and not at all while urgent (may
// be nil) reports true.
func NewReaper(stop <-chan struct{}, urgent func() bool) *Reaper {
	r := &Reaper{stop: stop, urgent: urgent}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// Add queues the handles of one removed file: w writable (truncated in
// steps, then closed), or nil when there is no writable handle (then the
// others just close), and others closed after it.
func (r *Reaper) Add(w File, others ...File) {
	files := append([]File{w}, others...)
	var steps int64
	if w != nil {
		if size, err := w.Size(); err == nil {
			steps = (size + ReapStep - 1) / ReapStep
		}
	}
	r.mu.Lock()
	r.queue = append(r.queue, files)
	r.steps += steps
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		go r.run()
	}
}

func (r *Reaper) run() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running = false
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		}
		files := r.queue[0]
		r.queue[0] = nil // the backing array must not keep closed files
		r.queue = r.queue[1:]
		r.mu.Unlock()
		r.reap(files)
	}
}

// reap truncates files[0] to nothing in steps (a failure just stops the
// steps: the close frees the rest), then closes every file.
func (r *Reaper) reap(files []File) {
	if w := files[0]; w != nil {
		size, err := w.Size()
		for err == nil && size > 0 {
			select {
			case <-r.stop:
				size = 0
				continue
			case <-time.After(r.pause()):
			}
			size = max(0, size-ReapStep)
			if err = w.Truncate(size); err == nil && r.Truncated != nil {
				r.Truncated(w, size)
			}
			r.mu.Lock()
			r.steps = max(0, r.steps-1)
			r.mu.Unlock()
		}
	}
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// pause is the pause before the next truncation step: reapPause, less
// when the queued steps would take longer than reapBudget, none while
// space is short.
func (r *Reaper) pause() time.Duration {
	if r.urgent != nil && r.urgent() {
		return 0
	}
	r.mu.Lock()
	steps := r.steps
	r.mu.Unlock()
	return min(reapPause, reapBudget/time.Duration(max(steps, 1)))
}

// Wait returns once nothing is queued or being reaped.
func (r *Reaper) Wait() {
	r.mu.Lock()
	for r.running {
		r.idle.Wait()
	}
	r.mu.Unlock()
}
