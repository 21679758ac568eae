package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/timer"
)

// BenchmarkTimerPending is the cost of many pending timer messages, run
// for real (bounded; never in CI: it needs -bench and takes minutes):
//
//	MQD_PENDING_N=10000000 go test ./bench -run '^$' -bench TimerPending -benchtime 1x -timeout 60m
//
// A child process (this test binary again) opens a store with the timer
// service and its once-a-second checkpoint (as the broker runs them),
// schedules MQD_PENDING_N (default 1,000,000) small timer messages due
// uniformly 2 min to 3 h 2 min ahead (batch puts of 128 from 4
// goroutines), waits until all are filed in the wheel and a checkpoint is
// saved (MQD_PENDING_KILL=stored: not even that), and reports; the parent
// reads its memory from /proc, kills it with SIGKILL, measures the store's
// and the wheel's disk bytes, recovers (store open, timer state load,
// re-filing what the last checkpoint did not cover) and then runs the
// timer lateness scenario (10,000 msg/s for MQD_PENDING_LATE_S, default
// 10 s, BenchmarkSchedLateness) while the first pending ones fall due and
// minute files are cascaded.
// MQD_BENCH_DIR picks the disk (default the temp dir); MQD_BENCH_FLUSH the
// flush policy (default SYNC_FLUSH).
func BenchmarkTimerPending(b *testing.B) {
	if dir := os.Getenv("MQD_PENDING_CHILD"); dir != "" {
		pendingChild(b, dir)
		return
	}
	n := 1_000_000
	if v := os.Getenv("MQD_PENDING_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("MQD_PENDING_N=%q", v)
		}
	}
	for range b.N {
		pendingRun(b, n)
	}
}

func pendingDir(b *testing.B) string {
	root := os.Getenv("MQD_BENCH_DIR")
	if root == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(root, "pending")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func pendingRun(b *testing.B, n int) {
	dir := pendingDir(b)
	b.Logf("load before: %s", loadAvg())
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkTimerPending$", "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), "MQD_PENDING_CHILD="+dir, "MQD_PENDING_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	ready := false
	for !ready && lines.Scan() {
		fmt.Fprintln(os.Stderr, "child:", lines.Text())
		ready = strings.HasPrefix(lines.Text(), "READY")
	}
	if !ready {
		b.Fatal("child ended before READY")
	}
	anon, file := procRSS(cmd.Process.Pid)
	b.ReportMetric(float64(anon)/(1<<20), "child-RssAnon-MiB")
	b.ReportMetric(float64(file)/(1<<20), "child-RssFile-MiB")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	cmd.Wait()
	for _, d := range []string{"commitlog", "consumequeue", "timer"} {
		b.ReportMetric(float64(duBytes(filepath.Join(dir, d)))/(1<<20), d+"-MiB")
	}
	recoverPending(b, dir, n)
}

// recoverPending reopens the killed child's store, times the recovery and
// measures delivery lateness with the messages still pending.
func recoverPending(b *testing.B, dir string, n int) {
	start := time.Now()
	var saved *timer.State
	if data, err := os.ReadFile(filepath.Join(dir, "timercheck.json")); err == nil {
		saved = new(timer.State)
		if err := json.Unmarshal(data, saved); err != nil {
			b.Fatal(err)
		}
	}
	lateSeconds := 10
	if v, err := strconv.Atoi(os.Getenv("MQD_PENDING_LATE_S")); err == nil && v > 0 {
		lateSeconds = v
	}
	rig := startLateRig(b, dir, 10000*lateSeconds, benchFlushType(), saved)
	defer rig.close()
	opened := time.Since(start)
	for rig.tm.Stats().EnqueueBehind > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportMetric(opened.Seconds(), "recover-open-s")
	b.ReportMetric(time.Since(start).Seconds(), "recover-total-s")
	if got := rig.st.MaxOffsetInQueue(timer.Topic, 0); got != int64(n) {
		b.Errorf("timer queue holds %d records after the crash, want %d", got, n)
	}
	b.Logf("recovered: %+v", rig.tm.Stats())
	r := runLatenessOn(b, rig, "timers", 10000, lateSeconds)
	if late := pendingLateness(b, rig.st); len(late) > 0 {
		p := percentiles(late)
		b.Logf("%d pending messages fell due and were delivered meanwhile: re-put lateness p50 %v p99 %v max %v ms", len(late), p[0], p[1], p[2])
	}
	reportLateness(b, "timers with pending", r)
	anon, _ := procRSS(os.Getpid())
	b.ReportMetric(float64(anon)/(1<<20), "recovered-RssAnon-MiB")
	b.Logf("load after: %s", loadAvg())
}

// pendingChild schedules n timer messages into dir and reports; it then
// waits to be killed.
func pendingChild(b *testing.B, dir string) {
	n, _ := strconv.Atoi(os.Getenv("MQD_PENDING_N"))
	rig := startLateRig(b, dir, 1, benchFlushType(), nil)
	anon, _ := procRSS(os.Getpid())
	fmt.Printf("opened: RssAnon %d MiB before scheduling\n", anon>>20)
	stopCk := make(chan struct{})
	go checkpointLoop(b, rig.tm, dir, stopCk)
	start := time.Now()
	cpu0 := cpuTime()
	base := time.Now().UnixMilli() + 2*60*1000
	const span, batch, senders = 3 * 3600 * 1000, 128, 4
	var next atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms := make([]*message.Message, 0, batch)
			for {
				i := next.Add(batch) - batch
				if i >= int64(n) {
					return
				}
				ms = ms[:0]
				for j := i; j < min(i+batch, int64(n)); j++ {
					due := base + int64(uint64(j)*2654435761%span)
					ms = append(ms, &message.Message{Topic: timer.Topic, Body: []byte(strconv.FormatInt(j, 10)),
						BornHost: benchHost, StoreHost: benchHost, Properties: timer.PropOutMs + "\x01" +
							strconv.FormatInt(due, 10) + "\x02REAL_TOPIC\x01Pending\x02REAL_QID\x010"})
				}
				if res := rig.st.PutMessages(ms); res.Status != engine.PutOK {
					panic(fmt.Sprint(res.Status, res.Err))
				}
			}
		}()
	}
	wg.Wait()
	stored := time.Since(start)
	fmt.Printf("stored %d in %v (%.0f msg/s)\n", n, stored, float64(n)/stored.Seconds())
	for rig.tm.Stats().EnqueueBehind > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	filed := time.Since(start)
	cpu := cpuTime() - cpu0
	fmt.Printf("filed %d in %v (%.0f msg/s end to end), CPU %v (%.1f µs/msg), stats %+v\n", n, filed,
		float64(n)/filed.Seconds(), cpu, float64(cpu.Microseconds())/float64(n), rig.tm.Stats())
	if os.Getenv("MQD_PENDING_KILL") != "stored" {
		time.Sleep(2500 * time.Millisecond) // a checkpoint covering everything filed
	}
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	anon, _ = procRSS(os.Getpid())
	fmt.Printf("pending: RssAnon %d MiB, Go heap in use %d MiB after GC\n", anon>>20, mem.HeapInuse>>20)
	fmt.Println("READY")
	select {}
}

// checkpointLoop saves the timer's durable state every second as the
// broker does (internal/broker/timer.go's timerCheckpointLoop).
func checkpointLoop(b *testing.B, tm *timer.Service, dir string, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		st, ok, err := tm.Checkpoint()
		if err != nil || !ok {
			continue
		}
		data, _ := json.Marshal(st)
		tmp := filepath.Join(dir, "timercheck.json.tmp")
		f, err := os.Create(tmp)
		if err == nil {
			_, err = f.Write(data)
			err = errors.Join(err, f.Sync(), f.Close())
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, "timercheck.json"))
		}
		if err == nil {
			err = tm.Saved(st)
		}
		if err != nil {
			b.Error(err)
		}
	}
}

// procRSS is a process's resident anonymous memory and resident file
// pages (mapped commit-log pages: page cache, not the process's own), bytes.
func procRSS(pid int) (anon, file int64) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return anon, file
}

// duBytes is the allocated size of the files under dir.
func duBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				}
			}
		}
		return nil
	})
	return total
}

// pendingLateness is the re-put lateness of the pending messages delivered
// so far (topic Pending: store time minus TIMER_OUT_MS), ms.
func pendingLateness(b *testing.B, st *engine.Store) []int64 {
	var out []int64
	for off := int64(0); ; {
		g := st.GetMessage("Pending", 0, off, 256, nil)
		if g.Status != engine.Found {
			g.Release()
			return out
		}
		for _, rec := range g.Messages {
			v, err := message.Parse(rec)
			if err != nil {
				b.Fatal(err)
			}
			s, _ := v.Property(timer.PropOutMs)
			due, _ := strconv.ParseInt(s, 10, 64)
			out = append(out, v.StoreTimestamp-due)
			off = v.QueueOffset + 1
		}
		g.Release()
	}
}
