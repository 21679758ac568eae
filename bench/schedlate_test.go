package bench

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/schedule"
	"github.com/mqd/mqd/timer"
)

// BenchmarkSchedLateness measures how late scheduled messages are, stage
// by stage, at 10,000 scheduled messages per second for 10 s on a real
// store with both delivery services running as the broker wires them:
//
//	repput   the delivered copy's store time (the re-put)
//	visible  when the store dispatched the copy: from then a consumer can
//	         see it and a parked pull is woken (under SYNC_FLUSH: durable)
//	consumed when a consumer woken by that dispatch (as the broker's pull
//	         hold is) has read it
//
// each minus the intended time (levels: the schedule record's store time
// + the level's delay; timers: TIMER_OUT_MS). levels: DELAY 1/2/3 (1 s,
// 2 s, 3 s) round-robin; timers: due 2.000–3.998 s after sending, 1,000
// distinct due times per second. MQD_BENCH_FLUSH picks the flush policy
// (default SYNC_FLUSH). One fixed scenario per sub-benchmark:
//
//	go test ./bench -run '^$' -bench SchedLateness -benchtime 1x
func BenchmarkSchedLateness(b *testing.B) {
	for _, kind := range []string{"levels", "timers"} {
		b.Run(kind, func(b *testing.B) {
			for range b.N {
				b.Logf("load before: %s", loadAvg())
				r := runLateness(b, kind, 10000, 10)
				b.Logf("load after: %s", loadAvg())
				reportLateness(b, kind, r)
				b.ReportMetric(float64(len(r.repput)), "msgs")
			}
		})
	}
}

// reportLateness reports p50/p99/max of each stage and prints the worst
// of each due second (stderr: benchmark logs are cut at 10 lines).
func reportLateness(b *testing.B, kind string, r latenessRun) {
	for _, st := range []struct {
		name string
		ms   []int64
	}{{"repput", r.repput}, {"visible", r.visible}, {"consumed", r.consumed}} {
		p := percentiles(st.ms)
		b.ReportMetric(p[0], st.name+"-p50-ms")
		b.ReportMetric(p[1], st.name+"-p99-ms")
		b.ReportMetric(p[2], st.name+"-max-ms")
	}
	for sec := range int64(len(r.bySecond)) {
		fmt.Fprintf(os.Stderr, "%s due second %2d: worst repput/visible/consumed %v ms\n", kind, sec, r.bySecond[sec])
	}
}

// percentiles is p50, p99 and max of ms (sorted in place).
func percentiles(ms []int64) [3]float64 {
	slices.Sort(ms)
	at := func(p float64) float64 { return float64(ms[int(p*float64(len(ms)-1))]) }
	return [3]float64{at(0.5), at(0.99), float64(ms[len(ms)-1])}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

const lateTopic = "Bench"

// lateProbe is a dispatcher that records when each record of lateTopic
// queue 0 was dispatched and wakes the consumer, as the broker's pull hold
// wakes a parked pull.
type lateProbe struct {
	at   []atomic.Int64 // by queue offset: dispatch time, epoch ms
	wake chan struct{}
}

func (p *lateProbe) Dispatch(r *engine.DispatchRequest) error {
	if r.Topic != lateTopic || r.QueueOffset < 0 || r.QueueOffset >= int64(len(p.at)) {
		return nil
	}
	p.at[r.QueueOffset].Store(time.Now().UnixMilli())
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// latenessRun is every message's lateness at each stage, ms.
type latenessRun struct {
	repput, visible, consumed []int64
	bySecond                  map[int64][3]int64 // second of due time since the first → worst of each stage
}

// lateRig is a store with both delivery services running.
type lateRig struct {
	st    *engine.Store
	tm    *timer.Service
	probe *lateProbe
	stop  chan struct{}
	wg    sync.WaitGroup
}

var benchLevels = []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}

// startLateRig opens (or recovers) the store in dir with both services
// (the timer from saved, nil: fresh) and a probe for n messages.
func startLateRig(b *testing.B, dir string, n int, flush engine.FlushDiskType, saved *timer.State) *lateRig {
	sched := schedule.New(schedule.Config{Levels: benchLevels})
	tm, err := timer.New(timer.Config{Dir: filepath.Join(dir, "timer")})
	if err != nil {
		b.Fatal(err)
	}
	probe := &lateProbe{at: make([]atomic.Int64, n), wake: make(chan struct{}, 1)}
	st, err := engine.Open(engine.Config{Dir: dir, FlushDiskType: flush, MappedFileSizeCommitLog: 256 << 20,
		DelayLevels: benchLevels, Dispatchers: []engine.Dispatcher{sched, tm, probe}})
	if err != nil {
		b.Fatal(err)
	}
	sched.SetStore(st, nil)
	if err := tm.SetStore(st, saved); err != nil {
		b.Fatal(err)
	}
	r := &lateRig{st: st, tm: tm, probe: probe, stop: make(chan struct{})}
	for _, run := range []func(<-chan struct{}){sched.Run, tm.Run} {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); run(r.stop) }()
	}
	return r
}

func (r *lateRig) close() {
	close(r.stop)
	r.wg.Wait()
	r.st.Close()
}

func benchFlushType() engine.FlushDiskType {
	if v := os.Getenv("MQD_BENCH_FLUSH"); v != "" {
		return engine.FlushDiskType(v)
	}
	return engine.SyncFlush
}

var benchHost = netip.MustParseAddrPort("127.0.0.1:10911")

// scheduledMsg is message n of the scenario and, for a timer, its due time
// (levels: 0, the due time follows from the store time).
func scheduledMsg(kind string, n int, sendMs int64) (*message.Message, int64) {
	m := &message.Message{Body: []byte(strconv.Itoa(n)), BornHost: benchHost, StoreHost: benchHost}
	if kind == "levels" {
		lv := 1 + n%len(benchLevels)
		m.Topic, m.QueueID = engine.ScheduleTopic, int32(lv-1)
		m.Properties = fmt.Sprintf("DELAY\x01%d\x02REAL_TOPIC\x01%s\x02REAL_QID\x010", lv, lateTopic)
		return m, 0
	}
	due := sendMs + 2000 + int64(n%1000)*2
	m.Topic = timer.Topic
	m.Properties = timer.PropOutMs + "\x01" + strconv.FormatInt(due, 10) + "\x02REAL_TOPIC\x01" + lateTopic + "\x02REAL_QID\x010"
	return m, due
}

func runLateness(b *testing.B, kind string, rate, seconds int) latenessRun {
	rig := startLateRig(b, b.TempDir(), rate*seconds, benchFlushType(), nil)
	defer rig.close()
	return runLatenessOn(b, rig, kind, rate, seconds)
}

// runLatenessOn runs the scenario on rig (its probe sized rate×seconds).
func runLatenessOn(b *testing.B, rig *lateRig, kind string, rate, seconds int) latenessRun {
	total := rate * seconds
	due := make([]int64, total)
	got := make(chan latenessRun, 1)
	cpu0 := cpuTime()
	go func() { got <- consumeLate(rig, due, time.Duration(seconds)*time.Second+40*time.Second) }()
	sendScheduled(b, rig.st, kind, due, rate)
	r := <-got
	b.ReportMetric(perMsg(cpuTime()-cpu0, int64(total)), "cpu-µs/msg")
	if len(r.repput) < total {
		b.Fatalf("only %d of %d delivered", len(r.repput), total)
	}
	return r
}

// sendScheduled puts len(due) messages at rate: 100 concurrent puts every
// 10 ms (group commit), recording each one's due time.
func sendScheduled(b *testing.B, st *engine.Store, kind string, due []int64, rate int) {
	const tick = 100
	start := time.Now()
	for i := 0; i < len(due); i += tick {
		var wg sync.WaitGroup
		now := time.Now().UnixMilli()
		for j := range min(tick, len(due)-i) {
			n := i + j
			m, at := scheduledMsg(kind, n, now)
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := st.PutMessage(m)
				if res.Status != engine.PutOK {
					b.Error(res.Status, res.Err)
				}
				if at == 0 {
					at = res.StoreTimestamp + benchLevels[n%len(benchLevels)].Milliseconds()
				}
				atomic.StoreInt64(&due[n], at)
			}()
		}
		wg.Wait()
		if w := time.Until(start.Add(time.Duration(i+tick) * time.Second / time.Duration(rate))); w > 0 {
			time.Sleep(w)
		}
	}
	if took, want := time.Since(start), time.Duration(len(due))*time.Second/time.Duration(rate); took > want*11/10 {
		b.Logf("sending took %v: the machine could not hold %d msg/s", took, rate)
	}
}

// consumeLate reads lateTopic queue 0 whenever the probe wakes it, until
// len(due) messages arrived or the time is up.
func consumeLate(rig *lateRig, due []int64, limit time.Duration) latenessRun {
	n := len(due)
	r := latenessRun{repput: make([]int64, 0, n), visible: make([]int64, 0, n), consumed: make([]int64, 0, n)}
	type seen struct {
		id          int
		off, stored int64
		read        int64
	}
	var all []seen
	deadline := time.After(limit)
	for off := int64(0); len(all) < n; {
		g := rig.st.GetMessage(lateTopic, 0, off, 256, nil)
		if g.Status == engine.Found {
			now := time.Now().UnixMilli()
			for _, rec := range g.Messages {
				v, err := message.Parse(rec)
				if err != nil {
					panic(err)
				}
				id, _ := strconv.Atoi(string(v.Body))
				all = append(all, seen{id, v.QueueOffset, v.StoreTimestamp, now})
				off = v.QueueOffset + 1
			}
			g.Release()
			continue
		}
		g.Release()
		select {
		case <-rig.probe.wake:
		case <-deadline:
			n = 0
		}
	}
	first := int64(-1)
	for _, s := range all { // due is complete: every put returned before its copy was stored
		d := atomic.LoadInt64(&due[s.id])
		if first < 0 || d < first {
			first = d
		}
	}
	r.bySecond = map[int64][3]int64{}
	for _, s := range all {
		d := atomic.LoadInt64(&due[s.id])
		r.repput = append(r.repput, s.stored-d)
		r.visible = append(r.visible, dispatchedAt(rig.probe, s.off)-d)
		r.consumed = append(r.consumed, s.read-d)
		sec, w := (d-first)/1000, r.bySecond[(d-first)/1000]
		r.bySecond[sec] = [3]int64{max(w[0], s.stored-d), max(w[1], r.visible[len(r.visible)-1]), max(w[2], s.read-d)}
	}
	return r
}

// dispatchedAt is when the probe saw queue offset off (the consumer may
// read an entry just before the probe, a later dispatcher, records it).
func dispatchedAt(p *lateProbe, off int64) int64 {
	for range 1000 {
		if at := p.at[off].Load(); at != 0 {
			return at
		}
		time.Sleep(time.Millisecond)
	}
	panic(fmt.Sprintf("offset %d consumed but never dispatched", off))
}
