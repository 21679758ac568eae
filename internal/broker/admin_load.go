package broker

// Request load: the figures behind the runtime-info keys Java takes from
// its executor queues and StoreStatsService latency counters
// (AdminBrokerProcessor.prepareRuntimeInfo, StoreStatsService
// .getRuntimeInfo). mqd has no thread pools: a request runs in its own
// goroutine as soon as its frame is read (at most a connection's
// in-flight slots at once, internal/remoting), so no request ever waits in
// an executor queue. What mqd measures instead, per request class, is how
// many are in progress (accepted, not yet answered) and the longest one.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
	"github.com/mqd/mqd/internal/stat"
)

// ReqLoad is one request class's load.
type ReqLoad struct {
	InProgress atomic.Int64 // handlers running
	MaxMillis  atomic.Int64 // longest handler run since start, ms
}

// counted wraps h so that l counts its runs. A pull that parks returns at
// once (its reply comes later), so its wait is not counted.
func counted(l *ReqLoad, h remoting.Handler) remoting.Handler {
	return func(ctx context.Context, c *remoting.Conn, req *protocol.Command) *protocol.Command {
		l.InProgress.Add(1)
		began := time.Now()
		defer func() {
			l.InProgress.Add(-1)
			atomicMax(&l.MaxMillis, time.Since(began).Milliseconds())
		}()
		return h(ctx, c, req)
	}
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// javaPutBuckets are StoreStatsService's putMessageDistributeTime buckets:
// upper bounds in ms (exclusive; the first is "<= 0") and their labels,
// which rocketmq-exporter parses.
var (
	javaPutBuckets = [...]int64{0, 10, 50, 100, 200, 500, 1000, 2000, 3000, 4000, 5000, 10000}
	javaPutLabels  = [...]string{"[<=0ms]", "[0~10ms]", "[10~50ms]", "[50~100ms]", "[100~200ms]", "[200~500ms]",
		"[500ms~1s]", "[1~2s]", "[2~3s]", "[3~4s]", "[4~5s]", "[5~10s]", "[10s~]"}
)

// putDistribution counts sends into javaPutBuckets.
type putDistribution [len(javaPutLabels)]atomic.Int64

func (d *putDistribution) observe(elapsed time.Duration) {
	ms, i := elapsed.Milliseconds(), 0
	if ms > 0 {
		i = 1
		for i < len(javaPutBuckets) && ms >= javaPutBuckets[i] {
			i++
		}
	}
	d[i].Add(1)
}

func (d *putDistribution) String() string {
	var sb strings.Builder
	for i, l := range javaPutLabels {
		fmt.Fprintf(&sb, "%s:%d ", l, d[i].Load())
	}
	return sb.String()
}

// quantileMillis is the upper bound, in ms, of the histogram bucket holding
// quantile q (as StoreStatsService.findPutMessageEntireTimePX answers its
// bucket's bound); 0 before any observation.
func quantileMillis(h *stat.Histogram, q float64) float64 {
	s := h.Snapshot()
	if s.Count == 0 {
		return 0
	}
	want := uint64(q * float64(s.Count))
	for i, c := range s.Cumulative {
		if c >= want && c > 0 {
			return float64(stat.Bounds[i].Microseconds()) / 1000
		}
	}
	return float64(stat.Bounds[len(stat.Bounds)-1].Milliseconds()) // above every bound: the last one is a floor
}

// storedAnyway are send answers that come after the message was stored
// (Java's PutMessageStatus: the put succeeded, the wait did not).
func storedAnyway(code int16) bool {
	switch code {
	case protocol.ResponseSuccess, protocol.ResponseFlushDiskTimeout, protocol.ResponseFlushSlaveTimeout,
		protocol.ResponseSlaveNotAvailable:
		return true
	}
	return false
}

// loadRuntimeInfo adds the request-load keys to t.
func (b *Broker) loadRuntimeInfo(t map[string]string) {
	s := b.stats
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	// No executor queue: nothing is queued, no head waits, no capacity.
	for _, k := range []string{"sendThreadPoolQueueSize", "sendThreadPoolQueueCapacity", "sendThreadPoolQueueHeadWaitTimeMills",
		"pullThreadPoolQueueSize", "pullThreadPoolQueueCapacity", "pullThreadPoolQueueHeadWaitTimeMills",
		"queryThreadPoolQueueSize", "queryThreadPoolQueueCapacity", "queryThreadPoolQueueHeadWaitTimeMills",
		"EndTransactionQueueSize", "EndTransactionThreadPoolQueueCapacity"} {
		t[k] = "0"
	}
	// What mqd has instead: requests in progress per class.
	t["sendRequestsInProgress"] = i64(s.Send.InProgress.Load())
	t["pullRequestsInProgress"] = i64(s.Pull.InProgress.Load())
	t["queryRequestsInProgress"] = i64(s.Query.InProgress.Load())
	t["endTransactionRequestsInProgress"] = i64(s.EndTxn.InProgress.Load())
	// The append is handed to the goroutine that owns the log tail; no
	// page-cache lock is taken, so none is held.
	t["pageCacheLockTimeMills"] = "0"
	// No transient store pool: Java answers Integer.MAX_VALUE without one.
	t["remainTransientStoreBufferNumbs"] = "2147483647"
	t["putMessageEntireTimeMax"] = i64(s.Send.MaxMillis.Load())
	t["getMessageEntireTimeMax"] = i64(s.Pull.MaxMillis.Load())
	t["putMessageFailedTimes"] = i64(s.putFailed.Load())
	t["putMessageDistributeTime"] = s.putDist.String()
	t["putLatency99"] = fmt.Sprintf("%.2f", quantileMillis(&s.SendLatency, 0.99))
	t["putLatency999"] = fmt.Sprintf("%.2f", quantileMillis(&s.SendLatency, 0.999))
}
