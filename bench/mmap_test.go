package bench

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mmapLog is the mmap + msync alternative measured against the engine's
// write path (the Java broker's approach): appenders copy into a mapped,
// zero-filled file under a lock; one goroutine msyncs the dirty range and
// wakes everyone waiting up to it. Bench-only.
type mmapLog struct {
	mu      sync.Mutex
	cond    *sync.Cond
	data    []byte
	tail    int
	synced  int
	kick    chan struct{}
	stopped bool
}

func newMmapLog(b *testing.B, size int) *mmapLog {
	path := filepath.Join(b.TempDir(), "mmap.log")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for off := 0; off < size; off += len(zero) {
		f.WriteAt(zero, int64(off))
	}
	f.Sync()
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	l := &mmapLog{data: data, kick: make(chan struct{}, 1)}
	l.cond = sync.NewCond(&l.mu)
	go l.loop()
	b.Cleanup(func() {
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		l.kick <- struct{}{}
		unix.Munmap(data)
	})
	return l
}

func (l *mmapLog) append(rec []byte) {
	l.mu.Lock()
	if l.tail+len(rec) > len(l.data) {
		l.tail, l.synced = 0, 0 // wrap: benchmark only
	}
	copy(l.data[l.tail:], rec)
	l.tail += len(rec)
	end := l.tail
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	l.mu.Lock()
	for l.synced < end && l.synced <= l.tail {
		l.cond.Wait()
	}
	l.mu.Unlock()
}

func (l *mmapLog) loop() {
	for range l.kick {
		for {
			l.mu.Lock()
			if l.stopped {
				l.mu.Unlock()
				return
			}
			from, to := l.synced&^4095, l.tail
			l.mu.Unlock()
			if to <= l.synced {
				break
			}
			unix.Msync(l.data[from:(to+4095)&^4095], unix.MS_SYNC)
			l.mu.Lock()
			l.synced = to
			l.cond.Broadcast()
			l.mu.Unlock()
		}
	}
}

func BenchmarkMmapMsync(b *testing.B) {
	for _, writers := range []int{1, 256} {
		b.Run("writers="+itoa(writers), func(b *testing.B) {
			l := newMmapLog(b, 1<<30)
			rec := make([]byte, 1024+91)
			h := make([]*latencies, writers)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < writers; w++ {
				h[w] = &latencies{h: NewLatencyHistogram()}
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < b.N; i += writers {
						t0 := time.Now()
						l.append(rec)
						h[w].h.RecordValue(time.Since(t0).Microseconds())
					}
				}(w)
			}
			wg.Wait()
			el := time.Since(start)
			all := NewLatencyHistogram()
			for _, x := range h {
				all.Merge(x.h)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
			b.ReportMetric(float64(all.ValueAtQuantile(50)), "p50-µs")
			b.ReportMetric(float64(all.ValueAtQuantile(99)), "p99-µs")
		})
	}
}
