package commitlog

import (
	"sync"
	"time"

	"github.com/mqd/mqd/internal/vfs"
)

// Freeing a removed segment's space stalls the commit log's fdatasyncs:
// the file system frees its extents in one transaction when the last
// descriptor closes, and 1 GiB of them held a SYNC_FLUSH log's syncs for
// ~100 ms on this VM's disk (issue 14: retention removing 6 segments at
// once made 534 and 822 ms p99 seconds at 100k msg/s). So a removed
// segment's files, once unlinked and released by the last reader, are
// truncated to nothing in steps of reapStep, reapPause apart, on one
// goroutine, before they close: the space goes back a little at a time,
// as the Java broker spaces its deletions (deletePhysicFilesInterval).
//
// The pauses shrink with the queue, so that freeing what is queued takes
// at most about reapBudget beyond the truncations themselves (retention
// decides on free space and runs every 10 s; 10 forced segments take
// ~3.2 s), and stop while the log is short of space (urgent).
const (
	reapStep   = 64 << 20
	reapPause  = 20 * time.Millisecond
	reapBudget = 2 * time.Second
)

// reaper truncates and closes removed segments' files one at a time.
type reaper struct {
	mu      sync.Mutex
	queue   [][]vfs.File // each: the files of one segment; [0] writable
	running bool
	idle    *sync.Cond    // signalled when running ends
	stop    chan struct{} // the log's: once closed, files close at once
	urgent  func() bool   // no pauses while it reports true (space is short)
	steps   int64         // truncation steps queued and under way (mu)
	// truncated, when set by a test, is told each truncation.
	truncated func(f vfs.File, size int64)
}

func newReaper(stop chan struct{}, urgent func() bool) *reaper {
	r := &reaper{stop: stop, urgent: urgent}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// add queues the files of a removed segment (w writable, or nil when the
// segment has no writable handle: then its files close at once).
func (r *reaper) add(w vfs.File, others ...vfs.File) {
	files := append([]vfs.File{w}, others...)
	var steps int64
	if w != nil {
		if size, err := w.Size(); err == nil {
			steps = (size + reapStep - 1) / reapStep
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

func (r *reaper) run() {
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
func (r *reaper) reap(files []vfs.File) {
	if w := files[0]; w != nil {
		size, err := w.Size()
		for err == nil && size > 0 {
			select {
			case <-r.stop:
				size = 0
				continue
			case <-time.After(r.pause()):
			}
			size = max(0, size-reapStep)
			if err = w.Truncate(size); err == nil && r.truncated != nil {
				r.truncated(w, size)
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
func (r *reaper) pause() time.Duration {
	if r.urgent != nil && r.urgent() {
		return 0
	}
	r.mu.Lock()
	steps := r.steps
	r.mu.Unlock()
	return min(reapPause, reapBudget/time.Duration(max(steps, 1)))
}

// wait returns once no segment is waiting or being reaped.
func (r *reaper) wait() {
	r.mu.Lock()
	for r.running {
		r.idle.Wait()
	}
	r.mu.Unlock()
}
