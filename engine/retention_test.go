package engine

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeDisk struct{ usage atomic.Value }

func (d *fakeDisk) set(u float64)               { d.usage.Store(u) }
func (d *fakeDisk) get(string) (float64, error) { return d.usage.Load().(float64), nil }
func retentionStore(t *testing.T, now *atomic.Int64, disk *fakeDisk) *Store {
	t.Helper()
	cfg := testConfig(t.TempDir(), AsyncFlush)
	cfg.MaxIndexNum = 200 // several index files
	cfg.Retention = RetentionConfig{DeleteWhen: "04", Interval: time.Hour, DiskUsage: disk.get,
		Now: func() time.Time { return time.UnixMilli(now.Load()) }}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill writes about n segments of 256 KiB.
func fill(t *testing.T, s *Store, n int) {
	body := strings.Repeat("r", 1000)
	for s.MaxPhysOffset() < int64(n)*(256<<10) {
		if r := s.PutMessage(msg("R", 0, body, map[string]string{"KEYS": "k"})); r.Status != PutOK {
			t.Fatal(r.Status, r.Err)
		}
	}
	// retention removes only durable segments (the flush loop may still
	// sync one that is merely written)
	if err := s.cl.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.cl.Written() == s.cl.Tail() && s.DispatchLag() == 0 })
}

func at(hour int, plus time.Duration) int64 {
	n := time.Now().Add(plus)
	return time.Date(n.Year(), n.Month(), n.Day(), hour, 30, 0, 0, time.Local).UnixMilli()
}

func TestRetentionExpiredAtDeleteWhen(t *testing.T) {
	var now atomic.Int64
	disk := &fakeDisk{}
	disk.set(0.10)
	now.Store(at(3, 0)) // not the deletion hour, nothing expired
	s := retentionStore(t, &now, disk)
	fill(t, s, 5)
	tail := s.MaxPhysOffset()
	if err := s.RunRetention(); err != nil || s.MinPhysOffset() != 0 {
		t.Fatal("removed outside deleteWhen", err)
	}
	now.Store(at(3, 100*time.Hour)) // expired, still not 04
	if err := s.RunRetention(); err != nil || s.MinPhysOffset() != 0 {
		t.Fatal("removed outside deleteWhen", err)
	}
	now.Store(at(4, 100*time.Hour))
	if err := s.RunRetention(); err != nil {
		t.Fatal(err)
	}
	if min := s.MinPhysOffset(); min != tail-tail%(256<<10) {
		t.Fatalf("min offset %d, want the tail segment %d", min, tail-tail%(256<<10))
	}
	r := s.GetMessage("R", 0, 0, 1, nil)
	defer r.Release()
	if r.Status != OffsetTooSmall || r.MinOffset == 0 {
		t.Fatalf("pull below the new minimum: %v min %d", r.Status, r.MinOffset)
	}
	if _, err := s.ReadMessage(0); err == nil {
		t.Fatal("removed record still readable")
	}
	if q, _ := s.QueryMessage("R", "k", 64, 0, time.Now().Add(time.Hour).UnixMilli()); len(q.Records) == 0 {
		t.Fatal("keys of surviving records lost")
	}
	if r := s.PutMessage(msg("R", 0, "after", nil)); r.Status != PutOK {
		t.Fatal("writes after retention", r.Status)
	}
}

func TestRetentionByDiskUsage(t *testing.T) {
	var now atomic.Int64
	disk := &fakeDisk{}
	now.Store(at(10, 0))
	disk.set(0.80) // above 75%: expired files go whatever the hour
	s := retentionStore(t, &now, disk)
	fill(t, s, 4)
	if err := s.RunRetention(); err != nil || s.MinPhysOffset() != 0 {
		t.Fatal("unexpired files removed at 80%", err)
	}
	now.Store(at(10, 100*time.Hour))
	if err := s.RunRetention(); err != nil || s.MinPhysOffset() == 0 {
		t.Fatal("expired files kept at 80%", err)
	}
	fill(t, s, 8)
	now.Store(time.Now().UnixMilli()) // every file unexpired
	disk.set(0.87)                    // above 85%: forcibly
	before := s.MinPhysOffset()
	if err := s.RunRetention(); err != nil || s.MinPhysOffset() <= before {
		t.Fatal("unexpired files kept at 87%", err)
	}
}

func TestRefuseWritesNearFullDisk(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	disk := &fakeDisk{}
	disk.set(0.95)
	s := retentionStore(t, &now, disk)
	r := s.PutMessage(msg("R", 0, "x", nil))
	if r.Status != ServiceNotAvailable || !errors.Is(r.Err, ErrDiskFull) {
		t.Fatalf("%v %v", r.Status, r.Err)
	}
	disk.set(0.50)
	if err := s.RunRetention(); err != nil {
		t.Fatal(err)
	}
	if r := s.PutMessage(msg("R", 0, "x", nil)); r.Status != PutOK {
		t.Fatal(r.Status)
	}
}

// stallDispatcher blocks dispatch until released.
type stallDispatcher struct{ release chan struct{} }

func (d stallDispatcher) Dispatch(*DispatchRequest) error { <-d.release; return nil }

func TestRetentionNeverOutrunsTheDispatcher(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	disk := &fakeDisk{}
	disk.set(0.87) // forcible deletion of unexpired files
	stall := stallDispatcher{release: make(chan struct{})}
	cfg := testConfig(t.TempDir(), AsyncFlush)
	cfg.Retention = RetentionConfig{Interval: time.Hour, DiskUsage: disk.get, Now: func() time.Time { return time.UnixMilli(now.Load()) }}
	cfg.Dispatchers = []Dispatcher{stall}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(stall.release); s.Close() }()
	body := strings.Repeat("r", 1000)
	for s.MaxPhysOffset() < 4*(256<<10) {
		s.PutMessage(msg("R", 0, body, nil))
	}
	waitFor(t, func() bool { return s.cl.Written() == s.cl.Tail() })
	if err := s.RunRetention(); err != nil {
		t.Fatal(err)
	}
	if s.MinPhysOffset() > s.dispatch.done.Load() {
		t.Fatalf("retention removed [%d, %d) before the dispatcher (at %d) read it", 0, s.MinPhysOffset(), s.dispatch.done.Load())
	}
}
