// Package bench holds the project's workloads: in-process engine appends
// (run by `go test -bench . ./bench`) and, for mqbench, over-the-wire
// producers and consumers. Latencies are kept in HDR histograms owned by
// one worker goroutine each and merged at the end.
package bench

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// AppendResult summarises an append workload.
type AppendResult struct {
	Records  int
	Bytes    int64
	Elapsed  time.Duration
	Errors   int
	Latency  *hdrhistogram.Histogram // ack latency in microseconds
	Statuses map[engine.PutStatus]int
}

// RecordsPerSec is the throughput in records per second.
func (r AppendResult) RecordsPerSec() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

// MBPerSec is the payload throughput in MB/s (10^6 bytes).
func (r AppendResult) MBPerSec() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6 }

// NewLatencyHistogram covers 1 µs to 60 s with 3 significant digits.
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, 60_000_000, 3)
}

// BenchMessage is a producer-like message: body of size bytes, a tag and a
// key, IPv4 hosts.
func BenchMessage(topic string, queue int32, size int) *message.Message {
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	return &message.Message{
		Topic: topic, QueueID: queue, BornTimestamp: time.Now().UnixMilli(),
		BornHost:   netip.MustParseAddrPort("127.0.0.1:50000"),
		StoreHost:  netip.MustParseAddrPort("127.0.0.1:10911"),
		Body:       body,
		Properties: message.EncodeProperties(map[string]string{"TAGS": "TagA", "KEYS": "bench-key"}),
	}
}

// Append runs n appends of size-byte messages from writers goroutines
// against s (each writer waits for its own acknowledgement, as a sync
// producer does: durable under SYNC_FLUSH, written under ASYNC_FLUSH) and
// measures every ack.
func Append(s *engine.Store, writers, n, size int) AppendResult {
	return AppendWait(s, writers, n, size, true)
}

// AppendWait is Append with the producer's wait: false is RocketMQ's
// WAIT=false, an ack once the record is in the log's memory (the append
// path alone).
func AppendWait(s *engine.Store, writers, n, size int, wait bool) AppendResult {
	var wg sync.WaitGroup
	hists := make([]*hdrhistogram.Histogram, writers)
	errs := make([]int, writers)
	start := time.Now()
	for w := 0; w < writers; w++ {
		hists[w] = NewLatencyHistogram()
		count := n / writers
		if w < n%writers {
			count++
		}
		wg.Add(1)
		go func(w, count int) {
			defer wg.Done()
			m := BenchMessage("BenchTopic", int32(w%8), size)
			h := hists[w]
			for i := 0; i < count; i++ {
				t0 := time.Now()
				r := s.PutMessageWait(m, wait)
				if r.Status != engine.PutOK {
					errs[w]++
				}
				_ = h.RecordValue(time.Since(t0).Microseconds())
			}
		}(w, count)
	}
	wg.Wait()
	res := AppendResult{Records: n, Bytes: int64(n) * int64(size), Elapsed: time.Since(start), Latency: NewLatencyHistogram()}
	for w := range hists {
		res.Latency.Merge(hists[w])
		res.Errors += errs[w]
	}
	return res
}

// String is one line for logs.
func (r AppendResult) String() string {
	return fmt.Sprintf("records=%d rec/s=%.0f MB/s=%.1f p50=%dus p99=%dus max=%dus errors=%d",
		r.Records, r.RecordsPerSec(), r.MBPerSec(), r.Latency.ValueAtQuantile(50), r.Latency.ValueAtQuantile(99), r.Latency.Max(), r.Errors)
}
