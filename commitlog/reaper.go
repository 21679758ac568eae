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
const (
	reapStep  = 64 << 20
	reapPause = 20 * time.Millisecond
)

// reaper truncates and closes removed segments' files one at a time.
type reaper struct {
	mu      sync.Mutex
	queue   [][]vfs.File // each: the files of one segment; [0] writable
	running bool
	idle    *sync.Cond    // signalled when running ends
	stop    chan struct{} // the log's: once closed, files close at once
	// truncated, when set by a test, is told each truncation.
	truncated func(f vfs.File, size int64)
}

func newReaper(stop chan struct{}) *reaper {
	r := &reaper{stop: stop}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// add queues the files of a removed segment (w writable, or nil when the
// segment has no writable handle: then its files close at once).
func (r *reaper) add(w vfs.File, others ...vfs.File) {
	files := append([]vfs.File{w}, others...)
	r.mu.Lock()
	r.queue = append(r.queue, files)
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
			case <-time.After(reapPause):
			}
			size = max(0, size-reapStep)
			if err = w.Truncate(size); err == nil && r.truncated != nil {
				r.truncated(w, size)
			}
		}
	}
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// wait returns once no segment is waiting or being reaped.
func (r *reaper) wait() {
	r.mu.Lock()
	for r.running {
		r.idle.Wait()
	}
	r.mu.Unlock()
}
