package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// BenchmarkTxnVsPlainSend compares, at SYNC_FLUSH over the wire, a plain
// synchronous send with a transactional one as producers do it: the
// prepared send (acknowledged once durable), then END_TRANSACTION commit,
// oneway. The clock stops when every message is readable in its real
// queue, so the transactional figure includes the commit re-put and the op
// record. Report msgs/s of both; the goal is txn ≥ 0.5x plain.
//
//	MQD_BENCH_DIR=/path go test -run '^$' -bench TxnVsPlainSend -benchtime 20000x ./internal/broker
func BenchmarkTxnVsPlainSend(b *testing.B) {
	for _, mode := range []string{"plain", "txn"} {
		b.Run(mode, func(b *testing.B) { benchSend(b, mode == "txn") })
	}
}

const benchSenders = 64

func benchSend(b *testing.B, txn bool) {
	br := benchBroker(b, engine.SyncFlush) // send_bench_test.go
	var err error
	clients := make([]*remoting.Client, 4)
	for i := range clients {
		if clients[i], err = remoting.Dial(context.Background(), br.Addr(), remoting.ClientConfig{}); err != nil {
			b.Fatal(err)
		}
		defer clients[i].Close()
	}
	body := make([]byte, 1024)
	props := "TAGS\x01t\x02"
	if txn {
		props += "TRAN_MSG\x01true\x02PGROUP\x01pg\x02"
	}
	var next, failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range benchSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[g%len(clients)]
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if !benchSendOne(br, c, body, props+"UNIQ_KEY\x01B"+strconv.FormatInt(i, 10), txn) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	sent := time.Since(start)
	for br.store.MaxOffsetInQueue("BenchT", 0) < int64(b.N) {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("only %d of %d committed", br.store.MaxOffsetInQueue("BenchT", 0), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d sends failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/sent.Seconds(), "acked/s")
}

func benchSendOne(br *Broker, c *remoting.Client, body []byte, props string, txn bool) bool {
	h := &protocol.SendMessageRequestHeader{ProducerGroup: "pg", Topic: "BenchT", DefaultTopic: TopicAutoCreate,
		DefaultTopicQueueNums: 1, QueueID: 0, BornTimestamp: time.Now().UnixMilli(), Properties: props}
	if txn {
		h.SysFlag = protocol.TransactionPreparedType
	}
	req := protocol.NewRequest(protocol.SendMessageV2, nil)
	req.ExtFields, req.Body = h.EncodeV2(), body
	resp, err := c.Invoke(context.Background(), req)
	if err != nil || resp.Code != protocol.ResponseSuccess {
		return false
	}
	if !txn {
		return true
	}
	var rh protocol.SendMessageResponseHeader
	if err := rh.Decode(resp.ExtFields); err != nil {
		return false
	}
	_, phys, err := message.ParseOffsetMsgID(rh.MsgID)
	if err != nil {
		return false
	}
	end := protocol.NewRequest(protocol.EndTransaction, &protocol.EndTransactionRequestHeader{
		ProducerGroup: "pg", TranStateTableOffset: rh.QueueOffset, CommitLogOffset: phys,
		CommitOrRollback: protocol.TransactionCommitType, MsgID: "x"})
	return c.InvokeOneway(end) == nil
}

// BenchmarkTxnScanOpenHalves measures one check-back round over b.N open
// half messages, all due for a check (no producer is connected, so the
// round copies each one and sends nothing): halves/s and the Go heap the
// round adds at its peak, which stays flat as b.N grows because the round
// holds one window at a time.
//
//	go test -run '^$' -bench TxnScanOpenHalves -benchtime 100000x ./internal/broker
func BenchmarkTxnScanOpenHalves(b *testing.B) {
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := NewConfig()
	cfg.BrokerIP1, cfg.Listener = "127.0.0.1", ln
	cfg.Store = engine.Config{Dir: dir, FlushDiskType: engine.SyncFlush}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.TransactionCheckInterval = time.Hour
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	defer br.Shutdown(context.Background())
	<-br.txn.ready
	const batch = 1000
	for i := 0; i < b.N; i += batch {
		ms := make([]*message.Message, 0, batch)
		for j := i; j < min(i+batch, b.N); j++ {
			m := &message.Message{Topic: "ScanT", QueueID: 0, BornTimestamp: 1, BornHost: br.storeHost, StoreHost: br.storeHost,
				Body: make([]byte, 256), Properties: "UNIQ_KEY\x01S" + strconv.Itoa(j) + "\x02PGROUP\x01pg"}
			br.toHalf(m)
			ms = append(ms, m)
		}
		if res := br.store.PutMessages(ms); !res.Status.Stored() {
			b.Fatal(res.Status)
		}
	}
	for br.store.MaxOffsetInQueue(TopicTransHalf, 0) < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	br.txnScan(nil)
	el := time.Since(start)
	b.StopTimer()
	close(done)
	<-exited
	if off, _ := br.offsets.Query(TransCheckGroup, TopicTransHalf, 0); off != int64(b.N) {
		b.Fatalf("round reached %d of %d (the 60 s round limit?)", off, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "halves/s")
	b.ReportMetric(float64(peak-base)/(1<<20), "peakHeapMiB")
}
