package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// TestClientCheck cross-checks mqbench's figures against the real Go client
// (rocketmq-client-go v2.1.2) on a running broker: the same open-loop
// schedule (rate, 1 KiB bodies, keys and tags, latency from the intended
// send time) is driven first through the client's SendSync, then through
// mqbench's sender, and both summary lines are printed with the CPU time
// each generator used per message. Skipped unless MQD_BENCH_NAMESRV is set:
//
//	MQD_BENCH_NAMESRV=127.0.0.1:9876 go test -run ClientCheck -v ./bench
//
// MQD_BENCH_RATE (default 2000 msg/s) and MQD_BENCH_SECONDS (default 5)
// size the runs.
func TestClientCheck(t *testing.T) {
	ns := os.Getenv("MQD_BENCH_NAMESRV")
	if ns == "" {
		t.Skip("MQD_BENCH_NAMESRV not set")
	}
	rate := envInt(t, "MQD_BENCH_RATE", 2000)
	secs := envInt(t, "MQD_BENCH_SECONDS", 5)
	rlog.SetLogLevel("error")
	cfg := WireConfig{Namesrv: SplitAddrs(ns), Topic: "mqbench_clientcheck", Size: 1024, TPS: int64(rate),
		Mode: ModeSync, Inflight: 256, Keys: true, Tags: true, Duration: time.Duration(secs) * time.Second,
		Warmup: time.Second, Out: os.Stdout, Log: os.Stderr}
	cfg.Defaults()
	adm := newWireAdmin(&cfg)
	if _, err := adm.ensureTopic(context.Background()); err != nil {
		t.Fatal(err)
	}
	adm.close()

	cpu0 := cpuTime()
	cs := clientRun(t, &cfg)
	cpu1 := cpuTime()
	line := cs.Line()
	all := func(measured int64) int64 { // messages of the warmup and the measured phase
		return measured * int64(cfg.Warmup+cfg.Duration) / int64(cfg.Duration)
	}
	t.Logf("rocketmq-client-go: %s cpu_us_per_msg=%.1f", line, perMsg(cpu1-cpu0, all(cs.Sent)))

	ms, err := Produce(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cpu2 := cpuTime()
	t.Logf("mqbench:            %s cpu_us_per_msg=%.1f", ms.Line(), perMsg(cpu2-cpu1, all(ms.Sent)))
	if cs.Acked == 0 || ms.Acked == 0 {
		t.Fatalf("nothing acknowledged: client %d, mqbench %d", cs.Acked, ms.Acked)
	}
}

func envInt(t *testing.T, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q", name, v)
		}
		return n
	}
	return def
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perMsg(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// clientRun drives the real client on mqbench's schedule: send i is due at
// start + i/rate and runs SendSync on its own goroutine (at most Inflight
// at once — a full pool delays the send, which counts as latency).
func clientRun(t *testing.T, cfg *WireConfig) *Summary {
	p, err := rocketmq.NewProducer(rmqproducer.WithNameServer(cfg.Namesrv), rmqproducer.WithGroupName("mqbench_clientcheck"),
		rmqproducer.WithRetry(0), rmqproducer.WithSendMsgTimeout(cfg.Timeout))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	body := make([]byte, cfg.Size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	newMsg := func(i int64) *primitive.Message {
		return primitive.NewMessage(cfg.Topic, body).WithTag("TagA").WithKeys([]string{"cc" + strconv.FormatInt(i, 10)})
	}
	if _, err := p.SendSync(context.Background(), newMsg(-1)); err != nil { // route lookup, connection
		t.Fatal(err)
	}
	warm, measured := PlannedCounts(cfg.TPS, 1, cfg.Warmup, cfg.Duration, 0)
	clock := newRunClock()
	start := clock.now() + int64(50*time.Millisecond)
	mStart := start + int64(IntendedOffset(warm, cfg.TPS))
	hist := newLockedHist()
	slots := make(chan struct{}, cfg.Inflight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent, acked, last int64
	errs := map[int]int64{}
	func() {
		preciseTimerThread()
		defer runtime.UnlockOSThread()
		for i := int64(0); i < warm+measured; i++ {
			intended := start + int64(IntendedOffset(i, cfg.TPS))
			sleepUntil(clock, intended)
			slots <- struct{}{}
			isM := i >= warm
			if isM {
				sent++
			}
			wg.Go(func() {
				defer func() { <-slots }()
				res, err := p.SendSync(context.Background(), newMsg(i))
				now := clock.now()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs[ErrRequest] += b2i(isM)
				case res.Status != primitive.SendOK:
					errs[int(res.Status)+1000] += b2i(isM)
				default:
					acked += b2i(isM)
					hist.record((now-intended)/1000, 1, isM)
				}
				if isM {
					last = max(last, now)
				}
			})
		}
	}()
	wg.Wait()
	s := &Summary{Kind: "produce", Sent: sent, Acked: acked, Errors: errs, Duration: time.Duration(last - mStart)}
	h := NewLatencyHistogram()
	hist.final(h, map[int]int64{})
	s.Latency = PercentilesOf(h)
	if s.Duration > 0 {
		s.TPS = float64(acked) / s.Duration.Seconds()
	}
	s.Extra = []string{fmt.Sprintf("mode=client_sendsync size=%d target_tps=%d", cfg.Size, cfg.TPS)}
	return s
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
