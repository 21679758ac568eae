package commitlog

// Fault tests on crashfs: an I/O error on the write path or on fdatasync
// is sticky (FORMAT.md, "A failed write or fdatasync"), a full disk while
// preparing the next segment is not, and recovery survives faults of its
// own. Nothing may panic, and nothing may be acknowledged that a crash
// right after the fault would lose.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// segmentFault restricts a fault to the log's segment files.
const segmentFault = crashDir + "/0"

type stickyCase struct {
	name  string
	op    crashfs.Op
	errno syscall.Errno
}

var stickyCases = []stickyCase{
	{"EIO-on-write", crashfs.OpWrite, syscall.EIO},
	{"EIO-on-fdatasync", crashfs.OpSync, syscall.EIO},
	{"ENOSPC-on-fdatasync", crashfs.OpSync, syscall.ENOSPC},
	// ENOSPC on a write is not sticky (nothing is lost): see
	// TestWriteENOSPCIsNotSticky.
}

// forEachPolicy runs fn under both flush policies.
func forEachPolicy(t *testing.T, fn func(t *testing.T, p flush.Policy)) {
	for _, p := range policies {
		t.Run(p.name, func(t *testing.T) { fn(t, p.p) })
	}
}

// TestStickyErrorSingleWriter walks one failure step by step: the append
// whose write or sync fails gets the error, Err is set, every later Append
// and Flush fails wrapping it, Close returns it, Durable never moves past
// what was synced, and after a crash the log reopens at the last synced
// record and takes appends again.
func TestStickyErrorSingleWriter(t *testing.T) {
	for _, c := range stickyCases {
		t.Run(c.name, func(t *testing.T) {
			forEachPolicy(t, func(t *testing.T, p flush.Policy) {
				fsys := crashfs.New()
				l, err := Open(fsys, crashConfig(p, Hint{}))
				must(t, err)
				var acks []ackRec
				for i := range 5 {
					b := taggedBatch(0, i)
					r, err := l.Append(b, l.cfg.Policy.Wait())
					must(t, err)
					acks = append(acks, ackRec{off: r.Offset, end: r.End, size: int32(b.m.Size()), i: i})
				}
				must(t, flushRetry(t, l))
				synced := l.Durable()
				if synced != acks[4].end {
					t.Fatalf("durable %d after Flush, want %d", synced, acks[4].end)
				}
				fsys.Inject(crashfs.Fault{Op: c.op, PathContains: segmentFault, Err: c.errno})

				_, err = l.Append(taggedBatch(0, 5), l.cfg.Policy.Wait())
				if p.Durable() || c.op == crashfs.OpWrite {
					if !errors.Is(err, c.errno) {
						t.Fatalf("the append whose %s fails returned %v", c.name, err)
					}
				} else if err != nil {
					// ASYNC: the append returns once written, before any
					// sync; a round that syncs too (the interval passed)
					// met the failure after releasing it.
					t.Fatalf("the append written before the failed %s returned %v", c.name, err)
				} else if err := flushRetry(t, l); !errors.Is(err, c.errno) {
					t.Fatalf("Flush after a failed %s returned %v", c.name, err)
				}
				sticky := l.Err()
				if !errors.Is(sticky, c.errno) {
					t.Fatalf("Err() = %v, want %v", sticky, c.errno)
				}
				for i := 6; i < 9; i++ {
					if _, err := l.Append(taggedBatch(0, i), l.cfg.Policy.Wait()); !errors.Is(err, sticky) {
						t.Fatalf("append after the failure returned %v, want it to wrap %v", err, sticky)
					}
					if _, err := l.Append(taggedBatch(0, i), flush.NoWait); !errors.Is(err, sticky) {
						t.Fatalf("non-waiting append after the failure returned %v", err)
					}
				}
				if err := flushRetry(t, l); !errors.Is(err, sticky) {
					t.Fatalf("Flush after the failure returned %v", err)
				}
				if l.Durable() != synced {
					t.Fatalf("durable moved from %d to %d after the failure", synced, l.Durable())
				}
				if err := closeWithin(t, l, 10*time.Second); !errors.Is(err, sticky) {
					t.Fatalf("Close returned %v, want the sticky error", err)
				}

				// the process dies; the faults die with it
				after := fsys.Crash()
				spec := crashSpec{policy: p, writers: 1}
				out := crashOutcome{acks: acks, attempts: []int{9}, flushed: synced, durable: synced}
				l = verifyRecovered(t, after, Hint{Offset: acks[2].off}, spec, out)
				defer l.Close()
				if l.Tail() != synced {
					t.Fatalf("recovered tail %d, want the synced end %d", l.Tail(), synced)
				}
				appendAtTail(t, l, 1)
			})
		})
	}
}

// TestStickyErrorConcurrentWriters injects the fault after a random number
// of segment writes or syncs while 16 writers append: under SYNC_FLUSH the
// failing append and every waiter get an error wrapping the fault, never
// nil; afterwards every append fails wrapping the sticky error; a crash
// right then loses no acknowledged append, and the reopened log accepts
// appends.
func TestStickyErrorConcurrentWriters(t *testing.T) {
	seed := baseSeed(t)
	for _, c := range stickyCases {
		t.Run(c.name, func(t *testing.T) {
			forEachPolicy(t, func(t *testing.T, p flush.Policy) {
				for k := range 5 {
					s := seed + uint64(k)
					t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
						stickyConcurrent(t, rand.New(rand.NewPCG(s, 0xfa17)), p, c)
					})
				}
			})
		})
	}
}

func stickyConcurrent(t *testing.T, rng *rand.Rand, p flush.Policy, c stickyCase) {
	fsys := crashfs.New()
	l, err := Open(fsys, crashConfig(p, Hint{}))
	must(t, err)
	okOps := rng.IntN(150)
	if !p.Durable() {
		okOps = rng.IntN(30) // ASYNC syncs every 5 ms only
	}
	fsys.Inject(crashfs.Fault{Op: c.op, PathContains: segmentFault, Err: c.errno, After: okOps})

	const writers, maxPer = crashWriters, 400
	var (
		mu       sync.Mutex
		acks     []ackRec
		failures int
		sawPrep  bool // a writer stopped on a failed preparation
		wg       sync.WaitGroup
	)
	attempts := make([]int, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxPer {
				attempts[g] = i + 1
				b := taggedBatch(g, i)
				r, err := l.Append(b, l.cfg.Policy.Wait())
				if err == nil {
					mu.Lock()
					acks = append(acks, ackRec{off: r.Offset, end: r.End, size: int32(b.m.Size()), g: g, i: i})
					mu.Unlock()
					continue
				}
				if !errors.Is(err, c.errno) {
					t.Errorf("writer %d #%d: %v does not wrap %v", g, i, err, c.errno)
				}
				mu.Lock()
				failures++
				mu.Unlock()
				// from now on every append fails, wrapping the sticky error
				// The fault may hit the next segment's preparation (its
				// one fdatasync) first: that fails the appends needing the
				// segment, not the log.
				prep := errors.Is(err, ErrSegment) || errors.Is(err, ErrDiskFull)
				sticky := l.Err()
				if sticky == nil && prep {
					mu.Lock()
					sawPrep = true
					mu.Unlock()
					return
				}
				if sticky == nil {
					t.Errorf("writer %d: append failed with %v but Err() is nil", g, err)
					return
				}
				if !prep && !errors.Is(err, sticky) {
					t.Errorf("writer %d: %v does not wrap the sticky %v", g, err, sticky)
				}
				if _, err := l.Append(taggedBatch(g, i+1), l.cfg.Policy.Wait()); !errors.Is(err, sticky) {
					t.Errorf("writer %d: append after the failure returned %v", g, err)
				}
				attempts[g] = i + 2
				return
			}
		}()
	}
	wg.Wait()
	// ASYNC writers may all finish before the loop meets the fault: one
	// more writer goes on appending (the loop writes and, every interval,
	// syncs on its own) until it does.
	// If the fault hit the next segment's preparation first and the log
	// has nothing left to sync, appends can no longer reach the log's own
	// fdatasync: the log stays healthy (prepOnly), and only recovery is
	// checked below.
	extra, prepOnly := 0, sawPrep
	for deadline := time.Now().Add(5 * time.Second); !prepOnly && l.Err() == nil && !p.Durable() && time.Now().Before(deadline); extra++ {
		_, err := l.Append(taggedBatch(writers, extra), l.cfg.Policy.Wait())
		if err != nil && !errors.Is(err, c.errno) {
			t.Fatalf("append: %v", err)
		}
		prepOnly = prepOnly || (err != nil && (errors.Is(err, ErrSegment) || errors.Is(err, ErrDiskFull)))
		time.Sleep(100 * time.Microsecond)
	}
	sticky := l.Err()
	prepOnly = prepOnly && sticky == nil
	if !prepOnly && !errors.Is(sticky, c.errno) {
		t.Fatalf("Err() = %v, want %v", sticky, c.errno)
	}
	if p.Durable() && failures == 0 {
		t.Fatal("the fault fired but no append failed")
	}
	durable := l.Durable()
	for _, a := range acks {
		if p.Durable() && a.end > durable {
			t.Fatalf("append [%d,%d) acknowledged beyond the durable offset %d", a.off, a.end, durable)
		}
	}
	attempts = append(attempts, extra+1)
	if _, err := l.Append(taggedBatch(writers, extra), l.cfg.Policy.Wait()); !prepOnly && !errors.Is(err, sticky) {
		t.Fatalf("append after the failure returned %v", err)
	}
	if err := closeWithin(t, l, 10*time.Second); !prepOnly && !errors.Is(err, sticky) {
		t.Fatalf("Close returned %v, want the sticky error", err)
	}

	after := fsys.Crash()
	spec := crashSpec{policy: p, writers: writers + 1}
	out := crashOutcome{acks: acks, attempts: attempts, durable: durable}
	if !p.Durable() {
		out.acks = nil // nothing was flushed explicitly
	}
	l = verifyRecovered(t, after, Hint{}, spec, out)
	defer l.Close()
	if l.Tail() < durable {
		t.Fatalf("recovered tail %d below the durable offset %d reported before the crash", l.Tail(), durable)
	}
	appendAtTail(t, l, writers+1)
}

// TestSegmentPreallocationENOSPC fills the disk so that the next segment
// cannot be prepared: appends that need it fail with ErrDiskFull (the
// free-space check refuses before writing anything), appends are not refused for good (Err stays nil), and once
// space is freed appends go on into the new segment; nothing is lost.
func TestSegmentPreallocationENOSPC(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, p flush.Policy) {
		fsys := crashfs.New()
		fsys.SetCapacity(crashSegSize) // the first segment, not the second
		l, err := Open(fsys, crashConfig(p, Hint{}))
		must(t, err)
		var acks []ackRec
		i := 0
		for ; ; i++ {
			b := taggedBatch(0, i)
			r, err := l.Append(b, l.cfg.Policy.Wait())
			if err != nil {
				if !errors.Is(err, ErrDiskFull) {
					t.Fatalf("append %d needing a new segment on a full disk: %v", i, err)
				}
				break
			}
			acks = append(acks, ackRec{off: r.Offset, end: r.End, size: int32(b.m.Size()), i: i})
			if r.End > crashSegSize {
				t.Fatalf("append %d went to a segment that cannot exist", i)
			}
		}
		if len(acks) == 0 {
			t.Fatal("no append fitted in the first segment")
		}
		for range 3 {
			if _, err := l.Append(taggedBatch(0, i), l.cfg.Policy.Wait()); !errors.Is(err, ErrDiskFull) {
				t.Fatalf("append on a still full disk: %v", err)
			}
		}
		if err := l.Err(); err != nil {
			t.Fatalf("a failed segment preparation is sticky: %v", err)
		}
		must(t, flushRetry(t, l))
		for _, a := range acks {
			if err := checkFrameAt(l, a.off, a.size, a.g, a.i); err != nil {
				t.Fatal(err)
			}
		}

		fsys.SetCapacity(-1)
		// The failed preparation is asked for again after its back-off
		// (at most prepBackoffMax): appends fail with ErrDiskFull until
		// then, and resume by themselves.
		var r Result
		err = resumeWithin(t, func() error {
			b := taggedBatch(0, i)
			var err error
			if r, err = l.Append(b, l.cfg.Policy.Wait()); err == nil {
				acks = append(acks, ackRec{off: r.Offset, end: r.End, size: int32(b.m.Size()), i: i})
			} else if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("append after space was freed: %v", err)
			}
			return err
		})
		must(t, err)
		if r.Offset != crashSegSize {
			t.Fatalf("first append after the roll at %d, want %d", r.Offset, crashSegSize)
		}
		for i++; i < 400; i++ { // two more segments
			b := taggedBatch(0, i)
			r, err := l.Append(b, l.cfg.Policy.Wait())
			must(t, err)
			acks = append(acks, ackRec{off: r.Offset, end: r.End, size: int32(b.m.Size()), i: i})
		}
		must(t, flushRetry(t, l))
		end := l.Tail()
		must(t, closeWithin(t, l, 10*time.Second))

		spec := crashSpec{policy: p, writers: 1}
		out := crashOutcome{acks: acks, attempts: []int{i}, flushed: end, durable: end}
		l = verifyRecovered(t, fsys.Crash(), Hint{}, spec, out)
		defer l.Close()
		if l.Tail() != end {
			t.Fatalf("recovered tail %d, want %d", l.Tail(), end)
		}
		appendAtTail(t, l, 1)
	})
}

// TestSegmentPreallocationErrorConcurrent: 16 writers run into a failing
// preparation of the next segment (an injected EIO): each gets ErrSegment
// or succeeds, never hangs, and none of it is sticky.
func TestSegmentPreallocationErrorConcurrent(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, p flush.Policy) {
		fsys := crashfs.New()
		// the first preallocation is segment 0's, at Open; the second,
		// of segment 1, fails until cleared
		fsys.Inject(crashfs.Fault{Op: crashfs.OpPreallocate, After: 1})
		l, err := Open(fsys, crashConfig(p, Hint{}))
		must(t, err)
		defer l.Close()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var acks []ackRec
		attempts := make([]int, crashWriters)
		for g := range crashWriters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					attempts[g] = i + 1
					b := taggedBatch(g, i)
					r, err := l.Append(b, l.cfg.Policy.Wait())
					if err != nil {
						if !errors.Is(err, ErrSegment) || !errors.Is(err, syscall.EIO) {
							t.Errorf("writer %d: %v", g, err)
						}
						return
					}
					mu.Lock()
					acks = append(acks, ackRec{off: r.Offset, end: r.End, size: int32(b.m.Size()), g: g, i: i})
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := l.Err(); err != nil {
			t.Fatalf("sticky after a failed preparation: %v", err)
		}
		if l.Tail() > crashSegSize {
			t.Fatalf("tail %d beyond a segment that could not be prepared", l.Tail())
		}
		fsys.ClearFaults()
		must(t, resumeWithin(t, func() error {
			_, err := l.Append(taggedBatch(crashWriters, 0), l.cfg.Policy.Wait())
			return err
		}))
		must(t, flushRetry(t, l))
		for _, a := range acks {
			if err := checkFrameAt(l, a.off, a.size, a.g, a.i); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// resumeWithin calls try until it succeeds, failing after a failed
// preparation's longest back-off (and some slack) has passed.
func resumeWithin(t *testing.T, try func() error) error {
	t.Helper()
	deadline := time.Now().Add(prepBackoffMax + 2*time.Second)
	for {
		err := try()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRecoveryUnderFaults recovers a torn crash while one operation kind
// fails (after k successes): Open either works (and the log is then
// verified) or returns an error, never panics; the retry after the fault
// is gone, and the one after a further crash, both recover every
// acknowledged append.
func TestRecoveryUnderFaults(t *testing.T) {
	seed := baseSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x4ec))
	p := policies[0].p
	spec := crashSpec{policy: p, writers: crashWriters, maxPer: 200, crashAfter: 300 + rng.Int64N(900),
		opt: crashfs.CrashOptions{Rand: rng, KeepUnsyncedProb: 0.7, Sectors: true}}
	spec.hintAfter = spec.crashAfter / 2
	out := runUntilCrash(t, crashfs.New(), spec)

	ops := []struct {
		name string
		op   crashfs.Op
	}{
		{"list", crashfs.OpList}, {"open", crashfs.OpOpen}, {"stat", crashfs.OpStat},
		{"map", crashfs.OpMap}, {"read", crashfs.OpRead}, {"write", crashfs.OpWrite},
		{"sync", crashfs.OpSync}, {"preallocate", crashfs.OpPreallocate}, {"syncdir", crashfs.OpSyncDir},
	}
	opened, failed := 0, 0
	for _, o := range ops {
		for _, after := range []int{0, 1, 3} {
			fsys := cloneFS(t, out.fs)
			fsys.Inject(crashfs.Fault{Op: o.op, After: after})
			l, err := Open(fsys, crashConfig(p, Hint{Offset: out.hint}))
			if err == nil {
				opened++
				closeWithin(t, l, 10*time.Second)
			} else {
				failed++
			}
			fsys.ClearFaults()
			l = verifyRecovered(t, fsys, Hint{Offset: out.hint}, spec, out)
			must(t, closeWithin(t, l, 10*time.Second))
			l = verifyRecovered(t, fsys.Crash(), Hint{}, spec, out)
			must(t, closeWithin(t, l, 10*time.Second))
		}
	}
	t.Logf("faulty recoveries: %d opened, %d failed cleanly", opened, failed)
}

// TestRecoveryDropsSegmentsBeyondTail: segment files prepared ahead of the
// tail before a crash are removed by recovery, so a failed re-preparation
// of the first of them cannot leave a gap that refuses the next Open.
func TestRecoveryDropsSegmentsBeyondTail(t *testing.T) {
	forEachPolicy(t, func(t *testing.T, p flush.Policy) {
		fsys := crashfs.New()
		cfg := crashConfig(p, Hint{})
		l, err := Open(fsys, cfg)
		must(t, err)
		for i := range 5 {
			_, err := l.Append(taggedBatch(0, i), l.cfg.Policy.Wait())
			must(t, err)
		}
		must(t, flushRetry(t, l))
		tail := l.Tail()
		crashed := fsys.Crash()
		must(t, closeWithin(t, l, 10*time.Second))
		for _, base := range []int64{crashSegSize, 2 * crashSegSize, 3 * crashSegSize} {
			f, err := crashed.Open(l.segmentPath(base), vfs.Create)
			must(t, err)
			must(t, crashed.Preallocate(f, crashSegSize))
			must(t, f.Sync())
			must(t, f.Close())
		}
		must(t, crashed.SyncDir(cfg.Dir))
		// the tail segment's own completion is the first preallocation;
		// the next segment's preparation fails
		crashed.Inject(crashfs.Fault{Op: crashfs.OpPreallocate, After: 1})
		l, err = Open(crashed, cfg)
		must(t, err)
		if names, _ := crashed.List(cfg.Dir); slices.ContainsFunc(names, func(n string) bool {
			b, ok := parseSegmentName(n)
			return ok && b > crashSegSize
		}) {
			t.Errorf("segments beyond the tail survive recovery: %v", names)
		}
		must(t, closeWithin(t, l, 10*time.Second))
		crashed.ClearFaults()
		l, err = Open(crashed, cfg)
		must(t, err)
		defer l.Close()
		if l.Tail() != tail {
			t.Fatalf("tail %d after recovery, want %d", l.Tail(), tail)
		}
	})
}

// TestFailureEndsAWaitForTheNextSegment: an appender waiting for the next
// segment's preparation gets the log's sticky error as soon as the log
// fails, not ErrSegment after the roll's 5 s.
func TestFailureEndsAWaitForTheNextSegment(t *testing.T) {
	fsys := crashfs.New()
	fsys.GateSyncs(fmt.Sprintf("%020d", crashSegSize), 0) // the next segment's preparation
	fsys.HoldSyncs()
	l, err := Open(fsys, crashConfig(policies[0].p, Hint{}))
	must(t, err)
	defer l.Close()
	defer fsys.ReleaseSyncs() // before Close, which waits for the preparation
	for l.Tail() < crashSegSize-3000 {
		mustAppend(t, l, one(strings.Repeat("f", 1000)))
	}
	fsys.Inject(crashfs.Fault{Op: crashfs.OpWrite, PathContains: fmt.Sprintf("%020d", 0), Err: syscall.EIO})
	type outcome struct {
		err  error
		took time.Duration
	}
	big := make(chan outcome, 1)
	go func() { // does not fit: waits for the held preparation
		began := time.Now()
		_, err := l.Append(one(strings.Repeat("b", 5000)), flush.WaitDurable)
		big <- outcome{err, time.Since(began)}
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := l.Append(one("c"), flush.WaitDurable); !errors.Is(err, syscall.EIO) { // fits; its write fails
		t.Fatalf("the append whose write fails returned %v", err)
	}
	select {
	case o := <-big:
		if !errors.Is(o.err, syscall.EIO) || errors.Is(o.err, ErrSegment) {
			t.Fatalf("the append waiting for the next segment returned %v after %v, want the sticky error", o.err, o.took)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the append waiting for the next segment did not return within 3 s of the log's failure")
	}
}
