package engine

import (
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
)

// The minimum gap between syncs reaches the SYNC_FLUSH policy, and a gap
// that would outlast syncFlushTimeout is refused when the store opens.
func TestSyncFlushMinGapPolicy(t *testing.T) {
	cfg := Config{FlushDiskType: SyncFlush, SyncFlushMinGap: 300 * time.Microsecond}
	cfg.defaults()
	p, err := cfg.policy()
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := p.(flush.Sync); !ok || s.MinGap != 300*time.Microsecond {
		t.Fatalf("policy %#v", p)
	}
	for _, gap := range []time.Duration{-time.Microsecond, cfg.SyncFlushTimeout} {
		cfg.SyncFlushMinGap = gap
		if _, err := cfg.policy(); err == nil {
			t.Errorf("gap %v accepted", gap)
		}
	}
	if err := (Config{FlushDiskType: SyncFlush, SyncFlushMinGap: 10 * time.Millisecond, SyncFlushTimeout: 5 * time.Millisecond}).CheckPolicy(); err == nil {
		t.Error("CheckPolicy accepted a gap above syncFlushTimeout")
	}
	if err := (Config{FlushDiskType: SyncFlush, SyncFlushMinGap: time.Millisecond}).CheckPolicy(); err != nil {
		t.Errorf("CheckPolicy with the default timeout: %v", err)
	}
	cfg.SyncFlushMinGap, cfg.SyncFlushMinGapFromTps = time.Millisecond, 60_000
	if p, err := cfg.policy(); err != nil || p.(flush.Sync).GapFromRate != 60_000 {
		t.Fatalf("policy %#v, %v", p, err)
	}
	cfg.SyncFlushMinGapFromTps = -1
	if _, err := cfg.policy(); err == nil {
		t.Error("a negative syncFlushMinGapFromTps accepted")
	}
	cfg = Config{Dir: t.TempDir(), FlushDiskType: SyncFlush, SyncFlushMinGap: -1}
	if s, err := Open(cfg); err == nil {
		s.Close()
		t.Fatal("Open accepted a negative gap")
	}
}

// FlushMaxDirty reaches the ASYNC_FLUSH policy: 0 takes the default (or
// flushCommitLogLeastPages' bytes when more), a negative value none.
func TestFlushMaxDirtyPolicy(t *testing.T) {
	for _, c := range []struct {
		set        int64
		leastPages int
		want       int64
	}{{0, 0, flush.DefaultAsync.MaxDirty}, {0, 2048, 2048 * 4096}, {1 << 20, 0, 1 << 20}, {-1, 0, 0}} {
		cfg := Config{FlushDiskType: AsyncFlush, FlushMaxDirty: c.set, FlushLeastPages: c.leastPages}
		cfg.defaults()
		p, err := cfg.policy()
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := p.(flush.Async); !ok || a.MaxDirty != c.want || cfg.MaxDirtyBytes() != c.want {
			t.Errorf("FlushMaxDirty %d, least pages %d: policy %#v, MaxDirtyBytes %d, want %d", c.set, c.leastPages, p, cfg.MaxDirtyBytes(), c.want)
		}
	}
}
