package ha_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/ha"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// benchStore opens a store with production-like sizes (64 MiB segments,
// the default 1 MiB write piece) for the replication benchmarks.
func benchStore(b *testing.B, ft engine.FlushDiskType, buffered bool) *engine.Store {
	cfg := engine.Config{Dir: b.TempDir(), FlushDiskType: ft, MappedFileSizeCommitLog: 64 << 20,
		BufferedIO: buffered, Logger: quiet}
	s, err := engine.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkReplicatedPut compares a lone SYNC_FLUSH master with a
// SYNC_FLUSH master replicating to one ASYNC_FLUSH slave over loopback TCP:
// SYNC_MASTER (plain stream, S2-compressed stream, a slave writing through
// the page cache) and ASYNC_MASTER. 64 concurrent producers, 1 KiB bodies.
// It reports puts/s, the p50/p99 acknowledgement latency and the process's
// CPU time per put (master and slave share the process).
func BenchmarkReplicatedPut(b *testing.B) {
	for _, mode := range []struct {
		name          string
		slave, sync   bool
		compress      bool
		slaveBuffered bool
		ackDurable    bool
	}{
		{name: "lone-master"},
		{name: "SYNC_MASTER", slave: true, sync: true},
		{name: "SYNC_MASTER-s2", slave: true, sync: true, compress: true},
		{name: "SYNC_MASTER-slave-buffered", slave: true, sync: true, slaveBuffered: true},
		{name: "SYNC_MASTER-ackdurable", slave: true, sync: true, ackDurable: true},
		{name: "ASYNC_MASTER", slave: true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			master := benchStore(b, engine.SyncFlush, false)
			if mode.slave {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				srv := ha.NewServer(countingListener{ln, new(atomic.Int64), reportBytes}, source{master}, ha.Config{Logger: quiet})
				go srv.Serve()
				b.Cleanup(func() { srv.Close() })
				slave := benchStore(b, engine.AsyncFlush, mode.slaveBuffered)
				ctx, cancel := context.WithCancel(context.Background())
				cl := ha.NewClient(slave, func() string { return ln.Addr().String() }, ha.Config{Logger: quiet, Compress: mode.compress, AckDurable: mode.ackDurable})
				done := make(chan struct{})
				go func() { cl.Run(ctx); close(done) }()
				b.Cleanup(func() { cancel(); <-done })
				for srv.Status().Slaves == 0 {
					time.Sleep(time.Millisecond)
				}
				if mode.sync {
					master.SetReplicaWaiter(replicaWaiter{srv, 5 * time.Second})
				}
			}
			reportBytes.Store(0)
			runPuts(b, master, 64)
			if mode.slave {
				// Group commit: how many slave reports (8 bytes each) per put.
				b.ReportMetric(float64(reportBytes.Load())/8/float64(b.N), "reports/put")
			}
		})
	}
}

// reportBytes counts what slaves send the master in BenchmarkReplicatedPut.
var reportBytes = new(atomic.Int64)

// cpuTime is this process's user+system CPU time from /proc/self/stat.
func cpuTime(b *testing.B) time.Duration {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func runPuts(b *testing.B, s *engine.Store, workers int) {
	body := make([]byte, 1024)
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	per := (b.N + workers - 1) / workers
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < per; i++ {
				m := msg(i)
				m.Body = body
				t0 := time.Now()
				if r := s.PutMessage(m); r.Status != engine.PutOK {
					b.Error(r.Status, r.Err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "puts/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/put")
}

// catchUpBatch is haTransferBatchSize for BenchmarkCatchUp.
var catchUpBatch = 256 << 10

// countingListener counts the bytes a master writes to its slaves and,
// when read is set, the bytes it reads from them.
type countingListener struct {
	net.Listener
	written, read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return countingConn{c, l.written, l.read}, err
}

type countingConn struct {
	net.Conn
	written, read *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.read != nil {
		c.read.Add(int64(n))
	}
	return n, err
}

// benchBody returns a 1 KiB body: "json" is a compressible, varied JSON
// event (as a typical business message), "random" incompressible bytes.
func benchBody(kind string, i int) []byte {
	rnd := rand.New(rand.NewPCG(uint64(i), 7))
	if kind == "random" {
		b := make([]byte, 1024)
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		return b
	}
	var b []byte
	for len(b) < 1024 {
		b = fmt.Appendf(b, `{"orderId":%d,"userId":"u%07d","sku":"SKU-%05d","qty":%d,"price":%d.%02d,"status":"%s","ts":%d},`,
			rnd.Int64N(1e12), rnd.IntN(1e7), rnd.IntN(1e5), 1+rnd.IntN(9), rnd.IntN(1000), rnd.IntN(100),
			[]string{"CREATED", "PAID", "SHIPPED"}[rnd.IntN(3)], 1.7e12+rnd.Int64N(1e9))
	}
	return b[:1024]
}

// BenchmarkCatchUp measures how fast a new slave copies a master's log
// (256 MiB of 1 KiB records) from zero over loopback TCP, with a plain and
// an S2-compressed stream and a slave acknowledging only synced bytes
// (haSlaveAckDurable), for compressible (JSON) and incompressible bodies. It reports MB/s of log copied, the bytes on the wire per log
// byte, and the process's CPU seconds per MB of log (master, slave and
// codec share the process).
func BenchmarkCatchUp(b *testing.B) {
	for _, kind := range []string{"json", "random"} {
		b.Run(kind, func(b *testing.B) {
			master := benchStore(b, engine.AsyncFlush, false)
			for i := 0; master.MaxPhysOffset() < 256<<20; i++ {
				m := msg(0)
				m.Body = benchBody(kind, i%4096)
				if r := master.PutMessage(m); r.Status != engine.PutOK {
					b.Fatal(r.Status)
				}
			}
			for _, cfg := range []struct {
				name string
				ha.Config
			}{{"plain", ha.Config{}}, {"s2", ha.Config{Compress: true}}, {"plain-ackdurable", ha.Config{AckDurable: true}}} {
				b.Run(cfg.name, func(b *testing.B) { catchUp(b, master, cfg.Config) })
			}
		})
	}
}

func catchUp(b *testing.B, master *engine.Store, cfg ha.Config) {
	end := master.MaxPhysOffset()
	for master.WrittenOffset() < end {
		time.Sleep(time.Millisecond)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	wire := new(atomic.Int64)
	srv := ha.NewServer(countingListener{ln, wire, nil}, source{master}, ha.Config{BatchSize: catchUpBatch, Logger: quiet})
	go srv.Serve()
	defer srv.Close()
	b.SetBytes(end)
	b.ResetTimer()
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		slave := benchStore(b, engine.AsyncFlush, false)
		ctx, cancel := context.WithCancel(context.Background())
		cfg.Logger = quiet
		cl := ha.NewClient(slave, func() string { return ln.Addr().String() }, cfg)
		done := make(chan struct{})
		b.StartTimer()
		cpu0 := cpuTime(b)
		go func() { cl.Run(ctx); close(done) }()
		for slave.WrittenOffset() < end || cfg.AckDurable && slave.DurableOffset() < end {
			time.Sleep(time.Millisecond)
		}
		cpu += cpuTime(b) - cpu0
		b.StopTimer()
		cancel()
		<-done
		if err := slave.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	mb := float64(end) * float64(b.N) / 1e6
	b.ReportMetric(float64(wire.Load())/(float64(end)*float64(b.N)), "wire-B/B")
	b.ReportMetric(cpu.Seconds()*1e3/mb, "cpu-ms/MB")
}

// BenchmarkReplicationLag measures how long after a put returns on an
// ASYNC_MASTER (ASYNC_FLUSH) its bytes are written on the slave, at a
// fixed offered rate of 50k puts/s of 1 KiB (b.N puts), sampling every
// 16th put. It reports the achieved rate and the lag percentiles.
func BenchmarkReplicationLag(b *testing.B) {
	master := benchStore(b, engine.AsyncFlush, false)
	slave := benchStore(b, engine.AsyncFlush, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := ha.NewServer(ln, source{master}, ha.Config{Logger: quiet})
	go srv.Serve()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cl := ha.NewClient(slave, func() string { return ln.Addr().String() }, ha.Config{Logger: quiet})
	done := make(chan struct{})
	go func() { cl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for srv.Status().Slaves == 0 {
		time.Sleep(time.Millisecond)
	}
	type sample struct {
		end int64
		at  time.Time
	}
	samples := make(chan sample, 1<<16)
	var lags []time.Duration
	watched := make(chan struct{})
	go func() { // the slave's side: when did each sampled end arrive?
		defer close(watched)
		for s := range samples {
			for slave.WrittenOffset() < s.end {
				<-slave.Advanced()
			}
			lags = append(lags, time.Since(s.at))
		}
	}()
	const rate = 50000
	body := make([]byte, 1024)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		m := msg(i)
		m.Body = body
		r := master.PutMessage(m)
		if r.Status != engine.PutOK {
			b.Fatal(r.Status)
		}
		if i%16 == 0 {
			samples <- sample{r.Offset + int64(m.Size()) + 4, time.Now()}
		}
	}
	elapsed := time.Since(start)
	close(samples)
	<-watched
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "puts/s")
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "lag-p50-µs")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds()), "lag-p99-µs")
}
