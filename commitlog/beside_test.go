package commitlog

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// eager syncs whenever a byte is dirty and a millisecond has passed.
var eager = flush.Async{Interval: time.Millisecond, LeastBytes: 1, Thorough: time.Millisecond}

// TestAsyncSyncRunsBesideTheWrites: under ASYNC_FLUSH a send waiting for
// its write is released while the periodic fdatasync is held, the durable
// offset moves only when that sync ends and covers only what was written
// before it began, and a Flush waits for a sync of its own.
func TestAsyncSyncRunsBesideTheWrites(t *testing.T) {
	fsys := crashfs.New()
	l, err := Open(fsys, crashConfig(eager, Hint{}))
	must(t, err)
	defer l.Close()
	defer fsys.ReleaseSyncs()
	var mu sync.Mutex
	var published []int64 // the durable offsets OnAdvance saw move
	l.OnAdvance(func() {
		mu.Lock()
		defer mu.Unlock()
		if d := l.Durable(); len(published) == 0 || published[len(published)-1] != d {
			published = append(published, d)
		}
	})
	fsys.GateSyncs(segmentName(0), 0)
	fsys.HoldSyncs()

	first := mustAppend(t, l, one("a")) // its write starts a sync, which is held
	time.Sleep(20 * time.Millisecond)
	for i := range 5 {
		done := make(chan error, 1)
		go func() {
			_, err := l.Append(one(fmt.Sprint("w", i)), flush.WaitWritten)
			done <- err
		}()
		select {
		case err := <-done:
			must(t, err)
		case <-time.After(3 * time.Second):
			t.Fatalf("append %d waiting for its write was held behind the periodic sync", i)
		}
	}
	if d := l.Durable(); d != 0 {
		t.Fatalf("durable offset %d while the only sync is held", d)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush() }()
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned (%v) while syncs are held", err)
	case <-time.After(50 * time.Millisecond):
	}
	tail := l.Tail()
	fsys.ReleaseSyncs()
	select {
	case err := <-flushed:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Flush did not return once syncs were released")
	}
	if d := l.Durable(); d < tail {
		t.Fatalf("durable %d after Flush, want at least the tail %d", d, tail)
	}
	// The held sync began when only the first record was written: the
	// offset it published is that record's end, not what was written
	// while it was held (crashfs makes those durable too, a real disk
	// need not), and OnAdvance heard of it.
	mu.Lock()
	defer mu.Unlock()
	if len(published) < 2 || published[0] != 0 || published[1] != first.End {
		t.Fatalf("durable offsets published %v, want 0, then %d (the first record's end), then more", published, first.End)
	}
	l2 := reopenAfterCrash(t, fsys, l)
	defer l2.Close()
	if l2.Tail() < tail {
		t.Fatalf("after a crash the log ends at %d; %d was flushed", l2.Tail(), tail)
	}
}

// TestAsyncSyncFailureIsSticky: a periodic sync that fails beside the
// writes fails the log: later appends and a Flush get the error, and
// nothing written after the last good sync survives a crash as durable.
func TestAsyncSyncFailureIsSticky(t *testing.T) {
	fsys := crashfs.New()
	l, err := Open(fsys, crashConfig(eager, Hint{}))
	must(t, err)
	defer l.Close()
	fsys.Inject(crashfs.Fault{Op: crashfs.OpSync, PathContains: segmentName(0), Err: syscall.EIO})
	mustAppend(t, l, one("a"))
	deadline := time.Now().Add(5 * time.Second)
	for l.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(l.Err(), syscall.EIO) {
		t.Fatalf("log error %v after a failed periodic sync, want EIO", l.Err())
	}
	if _, err := l.Append(one("b"), flush.WaitWritten); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append after the failure: %v", err)
	}
	if err := l.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Flush after the failure: %v", err)
	}
	if d := l.Durable(); d != 0 {
		t.Fatalf("durable offset %d after the only sync failed", d)
	}
}

// reopenAfterCrash crashes fsys under l and opens the log again.
func reopenAfterCrash(t *testing.T, fsys *crashfs.FS, l *Log) *Log {
	t.Helper()
	hint := Hint{Offset: 0, Writer: l.Writer()}
	after := fsys.Crash()
	l2, err := Open(vfs.FS(after), crashConfig(eager, hint))
	must(t, err)
	return l2
}

// TestAsyncWritesThroughThePageCache: under ASYNC_FLUSH the segments are
// written through the page cache, under SYNC_FLUSH with O_DIRECT where the
// file system allows it (BufferedIO asks for the page cache there too).
func TestAsyncWritesThroughThePageCache(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fsys := b.fs(t)
			dir := t.TempDir()
			must(t, fsys.MkdirAll(dir))
			probe, err := fsys.Open(dir+"/probe", vfs.Create|vfs.Direct)
			must(t, err)
			canDirect := fsys.DirectIO(probe)
			probe.Close()
			for _, c := range []struct {
				name     string
				p        flush.Policy
				buffered bool
				direct   bool
			}{
				{"async", flush.DefaultAsync, false, false},
				{"sync", flush.DefaultSync, false, canDirect},
				{"sync-buffered", flush.DefaultSync, true, false},
			} {
				l, err := Open(fsys, Config{Dir: fmt.Sprintf("%s/%s", dir, c.name), SegmentSize: 1 << 20, Policy: c.p, BufferedIO: c.buffered, Logger: quiet})
				must(t, err)
				mustAppend(t, l, one("x"))
				l.mu.Lock()
				wf := l.tailSegment().wf
				l.mu.Unlock()
				if got := fsys.DirectIO(wf); got != c.direct {
					t.Errorf("%s: segment written with O_DIRECT %v, want %v", c.name, got, c.direct)
				}
				must(t, l.Close())
			}
		})
	}
}

// TestBesideSyncTellsOnAdvance: the durable offset a sync beside the
// writes publishes is announced through OnAdvance (a slave reporting its
// durable end to a SYNC_MASTER waits for it), also when nothing else is
// written after it.
func TestBesideSyncTellsOnAdvance(t *testing.T) {
	fsys := crashfs.New()
	onlyWhenAsked := flush.Async{Interval: time.Hour, LeastBytes: 1 << 40, Thorough: time.Hour}
	l, err := Open(fsys, crashConfig(onlyWhenAsked, Hint{}))
	must(t, err)
	defer l.Close()
	defer fsys.ReleaseSyncs()
	seen := make(chan int64, 64)
	l.OnAdvance(func() {
		select {
		case seen <- l.Durable():
		default:
		}
	})
	fsys.GateSyncs(segmentName(0), 0)
	fsys.HoldSyncs()
	appended := make(chan Result, 1)
	go func() {
		res, err := l.Append(one("a"), flush.WaitDurable)
		if err != nil {
			t.Error(err)
		}
		appended <- res
	}()
	time.Sleep(20 * time.Millisecond) // written; its sync is held
	fsys.ReleaseSyncs()
	res := <-appended
	deadline := time.After(3 * time.Second)
	for {
		select {
		case d := <-seen:
			if d >= res.End {
				return
			}
		case <-deadline:
			t.Fatalf("OnAdvance never saw the durable offset reach %d (durable now %d)", res.End, l.Durable())
		}
	}
}

// TestRecoverySyncsWhatAKilledProcessLeft: under ASYNC_FLUSH a killed
// process leaves its last writes in the page cache only, sealed segments
// included. Recovery calls the whole log durable, so it must sync them
// first: a power loss after the restart then loses nothing below that
// durable offset (the next checkpoint records it).
func TestRecoverySyncsWhatAKilledProcessLeft(t *testing.T) {
	never := flush.Async{Interval: time.Hour, LeastBytes: 1 << 40, Thorough: time.Hour}
	fsys := crashfs.New()
	l, err := Open(fsys, crashConfig(never, Hint{}))
	must(t, err)
	for l.Tail() < 2*crashSegSize+crashSegSize/2 { // two sealed segments, written, never synced
		if _, err := l.Append(one(strings.Repeat("k", 900)), flush.WaitWritten); err != nil {
			t.Fatal(err)
		}
	}
	writer := l.Writer()
	killed := fsys.KillProcess()
	_ = l.Close() // the dead process's goroutines end on ErrCrashed

	l2, err := Open(killed, crashConfig(never, Hint{Writer: writer}))
	must(t, err)
	durable := l2.Durable()
	if durable < 2*crashSegSize {
		t.Fatalf("recovered durable offset %d, want the log's end past %d", durable, 2*crashSegSize)
	}
	afterPowerLoss := killed.Crash()
	_ = l2.Close()
	l3, err := Open(afterPowerLoss, crashConfig(never, Hint{Durable: durable, Writer: writer}))
	if err != nil {
		t.Fatalf("after a kill, a restart and a power loss: %v", err)
	}
	defer l3.Close()
	if l3.Tail() < durable {
		t.Fatalf("after a kill, a restart and a power loss the log ends at %d, below the durable %d the restart published", l3.Tail(), durable)
	}
}

// TestAdvanceAnnouncedBeforeTheAnswer: the flush loop calls OnAdvance
// (the dispatcher's kick, replication's broadcast) before it answers the
// round's waiters, so that the dispatcher, not the answered appender,
// waits behind the other on a core. The hook holds the loop for a moment
// once the append's bytes are visible: had the answer gone out first, the
// appender would have returned by the end of it.
func TestAdvanceAnnouncedBeforeTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy flush.Policy
		wait   flush.Wait
		moved  func(*Log) int64
	}{
		{"sync", flush.Sync{Timeout: 5 * time.Second}, flush.WaitDurable, (*Log).Durable},
		{"async-written", flush.Async{Interval: time.Hour, LeastBytes: 1 << 40, Thorough: time.Hour}, flush.WaitWritten, (*Log).Written},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(crashfs.New(), crashConfig(tc.policy, Hint{}))
			must(t, err)
			defer l.Close()
			var returned atomic.Bool
			var before atomic.Int64 // highest visible offset seen while the append had not returned
			l.OnAdvance(func() {
				if returned.Load() || tc.moved(l) == 0 {
					return
				}
				time.Sleep(50 * time.Millisecond)
				if !returned.Load() {
					before.Store(max(before.Load(), tc.moved(l)))
				}
			})
			res, err := l.Append(one("a"), tc.wait)
			returned.Store(true)
			must(t, err)
			if before.Load() < res.End {
				t.Fatalf("OnAdvance saw %d before the append (end %d) was answered", before.Load(), res.End)
			}
		})
	}
}
