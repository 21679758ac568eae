package timer

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
)

// rig is a store with a running timer service.
type rig struct {
	t    *testing.T
	dir  string
	st   *engine.Store
	svc  *Service
	stop chan struct{}
	done chan struct{}
}

func startRig(t *testing.T, dir string, saved *State, roll time.Duration) *rig {
	t.Helper()
	svc, err := New(Config{Dir: filepath.Join(dir, "timer"), RollWindow: roll})
	if err != nil {
		t.Fatal(err)
	}
	st, err := engine.Open(engine.Config{Retention: engine.RetentionConfig{DiskUsage: roomyDisk}, Dir: dir, FlushDiskType: engine.SyncFlush, MappedFileSizeCommitLog: 4 << 20,
		ConsumeQueueEntriesPerFile: 1000, Dispatchers: []engine.Dispatcher{svc}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetStore(st, saved); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dir: dir, st: st, svc: svc, stop: make(chan struct{}), done: make(chan struct{})}
	go func() { svc.Run(r.stop); close(r.done) }()
	return r
}

// halt stops the service and closes the store, returning the state a
// checkpoint would save.
func (r *rig) halt() State {
	close(r.stop)
	<-r.done
	st, err := r.svc.FinalState()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.st.Close(); err != nil {
		r.t.Fatal(err)
	}
	return st
}

func (r *rig) schedule(body string, at int64) {
	r.t.Helper()
	host := netip.MustParseAddrPort("127.0.0.1:1")
	props := PropOutMs + "\x01" + strconv.FormatInt(at, 10) + "\x02REAL_TOPIC\x01Real\x02REAL_QID\x010\x02KEYS\x01" + body
	res := r.st.PutMessage(&message.Message{Topic: Topic, Body: []byte(body), BornHost: host, StoreHost: host, Properties: props})
	if res.Status != engine.PutOK {
		r.t.Fatal(res.Status, res.Err)
	}
}

// delivered returns body → store times of its deliveries in Real/0.
func (r *rig) delivered() map[string][]int64 {
	out := map[string][]int64{}
	for off := int64(0); ; {
		g := r.st.GetMessage("Real", 0, off, 32, nil)
		if g.Status != engine.Found {
			g.Release()
			return out
		}
		for _, rec := range g.Messages {
			v, err := message.Parse(rec)
			if err != nil {
				r.t.Fatal(err)
			}
			out[string(v.Body)] = append(out[string(v.Body)], v.StoreTimestamp)
			off = v.QueueOffset + 1
		}
		g.Release()
	}
}

func (r *rig) await(n int) map[string][]int64 {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := r.delivered()
		if len(d) >= n {
			return d
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d delivered", len(d), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeliversEachAtItsTime(t *testing.T) {
	r := startRig(t, t.TempDir(), nil, 0)
	now := time.Now().UnixMilli()
	at := map[string]int64{"past": now - 5000, "a": now + 150, "b": now + 700, "c": now + 1300, "d": now + 1310}
	for body, ts := range at {
		r.schedule(body, ts)
	}
	got := r.await(len(at))
	r.halt()
	for body, ts := range got {
		if len(ts) != 1 {
			t.Errorf("%s delivered %d times", body, len(ts))
		}
		// Not early; the upper bound only catches a missed wake-up (a whole
		// second late): puts wait for fsync on a loaded machine.
		if late := ts[0] - max(at[body], now); late < 0 || late > 1500 {
			t.Errorf("%s delivered %d ms from its time", body, late)
		}
	}
}

func TestRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	r := startRig(t, dir, nil, 0)
	now := time.Now().UnixMilli()
	r.schedule("early", now+100)
	r.await(1)
	for i := range 20 {
		r.schedule("late-"+strconv.Itoa(i), now+1500+int64(i)*50)
	}
	time.Sleep(200 * time.Millisecond)
	state := r.halt()
	r = startRig(t, dir, &state, 0)
	got := r.await(21)
	r.halt()
	for body, ts := range got {
		if len(ts) != 1 {
			t.Errorf("%s delivered %d times", body, len(ts))
		}
	}
}

func TestCrashBeforeCheckpointRefilesWithoutLossOrDuplicateEntries(t *testing.T) {
	dir := t.TempDir()
	r := startRig(t, dir, nil, 0)
	now := time.Now().UnixMilli()
	for i := range 10 {
		r.schedule("m-"+strconv.Itoa(i), now+1500)
	}
	time.Sleep(300 * time.Millisecond) // filed, not due
	r.halt()
	// Restart from a state saved before any of them was filed: they are
	// filed again; the slot keeps one entry per record.
	r = startRig(t, dir, &State{EnqueueOffset: 0, ReadSecond: time.Now().Unix()}, 0)
	got := r.await(10)
	time.Sleep(300 * time.Millisecond)
	got = r.delivered()
	r.halt()
	for body, ts := range got {
		if len(ts) != 1 {
			t.Errorf("%s delivered %d times", body, len(ts))
		}
	}
}

func TestRollParksFarMessages(t *testing.T) {
	r := startRig(t, t.TempDir(), nil, 500*time.Millisecond)
	target := time.Now().UnixMilli() + 1800
	r.schedule("far", target)
	got := r.await(1)
	r.halt()
	if got["far"][0] < target || r.svc.rolled.Load() < 2 {
		t.Fatalf("delivered at %d for %d after %d rolls", got["far"][0], target, r.svc.rolled.Load())
	}
}

func TestCatchUpAfterDowntimeAndSlotCleanup(t *testing.T) {
	dir := t.TempDir()
	r := startRig(t, dir, nil, 0)
	now := time.Now().UnixMilli()
	r.schedule("x", now+1200)
	r.schedule("y", now+2200)
	time.Sleep(100 * time.Millisecond)
	state := r.halt()
	time.Sleep(2500 * time.Millisecond) // both fall due while the broker is down
	r = startRig(t, dir, &state, 0)
	got := r.await(2)
	st, ok, err := r.svc.Checkpoint()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := r.svc.Saved(st); err != nil {
		t.Fatal(err)
	}
	r.halt()
	if len(got["x"]) != 1 || len(got["y"]) != 1 {
		t.Fatal(got)
	}
	hours, _ := os.ReadDir(filepath.Join(dir, "timer", "s"))
	for _, h := range hours {
		names, _ := os.ReadDir(filepath.Join(dir, "timer", "s", h.Name()))
		for _, n := range names {
			if sec, _ := strconv.ParseInt(n.Name(), 10, 64); sec < st.ReadSecond {
				t.Errorf("slot %s kept after the checkpoint passed it", n.Name())
			}
		}
	}
}

func TestTornSlotTail(t *testing.T) {
	dir := t.TempDir()
	sl, err := openSlots(dir)
	if err != nil {
		t.Fatal(err)
	}
	sl.append(slotKey{levelSecond, 100}, entry{target: 1, phys: 10, size: 50})
	sl.append(slotKey{levelSecond, 100}, entry{target: 2, phys: 10, size: 50}) // re-filed after a crash
	sl.append(slotKey{levelSecond, 100}, entry{target: 3, phys: 20, size: 50})
	sl.close()
	f, _ := os.OpenFile(sl.path(slotKey{levelSecond, 100}), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{1, 2, 3}) // torn entry
	f.Close()
	es, err := sl.read(slotKey{levelSecond, 100})
	if err != nil || len(es) != 2 || es[0].phys != 10 || es[1].phys != 20 {
		t.Fatal(es, err)
	}
}

// wheelOnly is a service without a store, at second now, for tests of
// filing and cascading.
func wheelOnly(tb testing.TB, now int64) *Service {
	svc, err := New(Config{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	svc.curSec.Store(now)
	svc.minutes.Store(now/60 + 1)
	svc.minSafe.Store(now/60 + 1)
	svc.hours.Store(now/3600 + 1)
	svc.hourSafe.Store(now/3600 + 1)
	svc.curPhys = map[int64]bool{}
	svc.meanwhile = func() error { return nil } // no store: the clock is the test's
	return svc
}

func TestFarEntriesCascadeToTheirSecond(t *testing.T) {
	now := int64(1_764_864_000) // an hour boundary
	svc := wheelOnly(t, now)
	defer svc.slots.close()
	targets := map[string]int64{"s": (now + 10) * 1000, "m": (now+30*60)*1000 + 7, "h": (now+2*86400)*1000 + 9}
	for name, at := range targets {
		if err := svc.place(entry{target: at, phys: int64(len(name)) + at, size: 1}); err != nil {
			t.Fatal(err)
		}
		_ = name
	}
	exists := func(k slotKey) bool { _, err := os.Stat(svc.slots.path(k)); return err == nil }
	if !exists(slotKey{levelSecond, now + 10}) || !exists(slotKey{levelMinute, (now + 30*60) / 60}) ||
		!exists(slotKey{levelHour, (now + 2*86400) / 3600}) {
		t.Fatal("entries not filed by second / minute / hour")
	}
	// Time passes (cascade is driven by the clock passed in): each far
	// entry ends in the file of its own second, exactly once.
	for _, at := range []int64{now + 30*60 - 60, now + 2*86400 - 60} {
		if err := svc.cascade(at); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range targets {
		es, err := svc.slots.read(slotKey{levelSecond, at / 1000})
		if err != nil || len(es) != 1 || es[0].target != at {
			t.Fatalf("second %d: %v %v", at/1000, es, err)
		}
	}
	// A cascade repeated after a crash files the entries again; reading
	// the second drops the repeat.
	svc.minutes.Store((now + 30*60) / 60)
	if err := svc.cascade(now + 30*60 - 60); err != nil {
		t.Fatal(err)
	}
	if es, _ := svc.slots.read(slotKey{levelSecond, now + 30*60}); len(es) != 1 {
		t.Fatalf("repeated cascade: %v", es)
	}
}

// The wheel sleeps until its earliest entry of the current second; a
// message due earlier that arrives meanwhile must wake it (Dispatch), not
// wait for the sleep to end with the later one.
func TestEarlierMessageWakesTheSleepingWheel(t *testing.T) {
	for time.Now().UnixMilli()%1000 > 50 { // start of a second: both due within it
		time.Sleep(time.Millisecond)
	}
	r := startRig(t, t.TempDir(), nil, 0)
	sec := time.Now().UnixMilli() / 1000 * 1000
	r.schedule("later", sec+950)
	time.Sleep(50 * time.Millisecond) // the wheel files it and sleeps until sec+950
	early := time.Now().UnixMilli() + 150
	r.schedule("early", early)
	got := r.await(2)
	r.halt()
	if e, l := got["early"][0], got["later"][0]; e < early || l < sec+950 || l-e < 300 {
		t.Fatalf("early (due %d) delivered at %d, later (due %d) at %d: the wheel was not woken", early, e, sec+950, l)
	}
}

// A cascade delivers what falls due every refileChunk re-filed entries:
// a crowded hour never holds up delivery for the whole of its re-filing.
func TestCascadeDeliversBetweenChunks(t *testing.T) {
	now := int64(1_764_864_000)
	svc := wheelOnly(t, now)
	defer svc.slots.close()
	calls := 0
	svc.meanwhile = func() error { calls++; return nil }
	const n = 3*refileChunk + 5
	for i := range n {
		if err := svc.place(entry{target: (now+30*60)*1000 + int64(i), phys: int64(i), size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.cascade(now + 30*60 - 60); err != nil {
		t.Fatal(err)
	}
	if calls < n/refileChunk {
		t.Fatalf("%d deliveries during a cascade of %d entries, want ≥ %d", calls, n, n/refileChunk)
	}
}

// roomyDisk is the disk usage the tests' stores see, whatever the host
// disk's (above 85% retention deletes unexpired segments, above 90% the
// store refuses writes, by design).
func roomyDisk(string) (float64, error) { return 0.1, nil }
