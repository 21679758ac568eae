package commitlog

import (
	"time"

	"github.com/mqd/mqd/internal/stat"
)

// FlushStats are the flush loop's figures since Open: how long each
// fdatasync round took and how many bytes and waiting appends it made
// durable (the group-commit round size).
type FlushStats struct {
	SyncLatency   *stat.Histogram
	RoundBytes    *stat.Counter
	RoundWaiters  *stat.Counter
	DurableOffset int64
}

// flushCounters are updated by the flush loop only.
type flushCounters struct {
	latency stat.Histogram
	bytes   stat.Counter
	waiters stat.Counter
}

func (c *flushCounters) synced(d time.Duration, bytes int64, waiters int) {
	c.latency.Observe(d)
	c.bytes.Add(bytes)
	c.waiters.Add(int64(waiters))
}

// FlushStats returns the flush loop's figures (live: the pointers keep
// counting).
func (l *Log) FlushStats() FlushStats {
	return FlushStats{SyncLatency: &l.flushStats.latency, RoundBytes: &l.flushStats.bytes,
		RoundWaiters: &l.flushStats.waiters, DurableOffset: l.durable.Load()}
}
