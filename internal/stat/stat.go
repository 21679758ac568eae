// Package stat is a lock-free latency histogram for hot paths: Observe is
// a few atomic adds, never a lock or an allocation. The metrics exporter
// turns a Snapshot into a Prometheus histogram at scrape time.
package stat

import (
	"sync/atomic"
	"time"
)

// Bounds are the histogram's bucket upper bounds, from 50 µs to 5 s: an
// fsync on a fast disk to a stalled one.
var Bounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 5 * time.Second,
}

// Histogram counts durations into Bounds. The zero value is ready.
type Histogram struct {
	buckets [len(Bounds) + 1]atomic.Int64 // last: above every bound
	count   atomic.Int64
	sum     atomic.Int64 // nanoseconds
}

// Observe adds one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(Bounds) && d > Bounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
	h.count.Add(1)
}

// Snapshot is a histogram's state: Cumulative[i] counts observations at
// most Bounds[i].
type Snapshot struct {
	Count      uint64
	Sum        time.Duration
	Cumulative [len(Bounds)]uint64
}

// Snapshot reads the histogram (not atomically as a whole: a concurrent
// Observe may show in the buckets and not yet in Count).
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	var run uint64
	for i := range Bounds {
		run += uint64(h.buckets[i].Load())
		s.Cumulative[i] = run
	}
	s.Count = max(uint64(h.count.Load()), run)
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Counter is a sum of values (e.g. bytes per group-commit round) with the
// number of additions.
type Counter struct {
	n, sum atomic.Int64
}

// Add records one value.
func (c *Counter) Add(v int64) {
	c.n.Add(1)
	c.sum.Add(v)
}

// Load returns the number of additions and their sum.
func (c *Counter) Load() (n, sum int64) { return c.n.Load(), c.sum.Load() }
