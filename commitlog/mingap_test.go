package commitlog

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
)

// syncRounds is the number of fdatasync rounds the log has made.
func syncRounds(l *Log) uint64 { return l.FlushStats().SyncLatency.Snapshot().Count }

// Under flush.Sync.MinGap the appends that arrive while the loop holds
// after a sync are made durable together by one round, which does not
// start before the gap has passed; none of them is lost or answered
// early.
func TestSyncMinGapGathersOneRound(t *testing.T) {
	const gap = time.Second // long enough for 16 goroutines to append on a loaded machine
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			l := openLog(t, b.fs(t), t.TempDir(), flush.Sync{Timeout: 5 * time.Second, MinGap: gap}, Hint{})
			defer l.Close()
			if _, err := l.Append(one("first"), flush.WaitDurable); err != nil {
				t.Fatal(err)
			}
			synced := time.Now() // the first round's sync ended before this
			before := syncRounds(l)

			const n = 16
			var wg sync.WaitGroup
			took := make([]time.Duration, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = l.Append(one("held"), flush.WaitDurable)
					took[i] = time.Since(synced)
				}()
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("append %d: %v", i, errs[i])
				}
				// lower bound only: the hold may end later, never earlier
				if took[i] < gap/2 {
					t.Errorf("append %d durable %v after the previous sync, inside the %v gap", i, took[i], gap)
				}
			}
			// one round, or two when a goroutine was scheduled only after
			// the held round began (a loaded machine)
			if got := syncRounds(l) - before; got < 1 || got > 2 {
				t.Errorf("%d appends during the gap took %d sync rounds, want 1 (2 at worst)", n, got)
			}
			if d, tail := l.Durable(), l.Tail(); d != tail {
				t.Errorf("durable offset %d, log ends at %d", d, tail)
			}
		})
	}
}

// Close during a hold still makes the held appends durable and answers
// their waiters: the final round does not wait for the gap.
func TestSyncMinGapCloseDuringHold(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fs, dir := b.fs(t), t.TempDir()
			l := openLog(t, fs, dir, flush.Sync{Timeout: time.Minute, MinGap: time.Minute / 2}, Hint{})
			done := make(chan error, 1)
			go func() {
				_, err := l.Append(one("held"), flush.WaitDurable)
				done <- err
			}()
			for deadline := time.Now().Add(10 * time.Second); l.Tail() == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the append did not reach the log")
				}
			}
			select {
			case err := <-done:
				t.Fatalf("append answered (%v) during the hold, before Close", err)
			case <-time.After(50 * time.Millisecond):
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("held append after Close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("held append not answered after Close")
			}
			l = openLog(t, fs, dir, flush.Sync{Timeout: 5 * time.Second}, Hint{})
			defer l.Close()
			if l.Tail() == 0 {
				t.Fatal("the held append is gone after a clean close")
			}
		})
	}
}

// Below GapFromRate no round is held: one appender at a time is answered
// after its own sync, however long MinGap is.
func TestSyncMinGapNotBelowRate(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			p := flush.Sync{Timeout: 5 * time.Second, MinGap: time.Minute / 2, GapFromRate: 1e9}
			l := openLog(t, b.fs(t), t.TempDir(), p, Hint{})
			defer l.Close()
			began := time.Now()
			for i := range 20 {
				if _, err := l.Append(one("unheld"), flush.WaitDurable); err != nil {
					t.Fatalf("append %d: %v", i, err)
				}
			}
			if took := time.Since(began); took >= p.MinGap {
				t.Fatalf("20 appends took %v: a round was held below the rate", took)
			}
		})
	}
}

// From GapFromRate on, rounds are held while appends keep arriving
// independently of the answers (open loop): far fewer sync rounds than
// the same stream unheld, and every append made durable.
func TestSyncMinGapHoldsASteadyStream(t *testing.T) {
	const gap, run = 20 * time.Millisecond, 500 * time.Millisecond
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			unheld := steadyStream(t, b, flush.Sync{Timeout: 5 * time.Second, MinGap: gap, GapFromRate: math.MaxFloat64}, run)
			held := steadyStream(t, b, flush.Sync{Timeout: 5 * time.Second, MinGap: gap, GapFromRate: 1000}, run)
			t.Logf("held %d, unheld %d", held, unheld)
			// Held, about one round a gap (more when the appender pauses
			// for a slice). Unheld, one a sync: so many more unless the
			// disk's syncs take a good part of the gap, when the bound
			// below cannot tell the two apart.
			if limit := max(3*uint64(run/gap), unheld/4); held > limit {
				t.Errorf("a steady stream took %d sync rounds held (at most %d wanted), %d unheld", held, limit, unheld)
			}
		})
	}
}

// steadyStream appends for run as fast as one goroutine can (not waiting
// for answers; at most 64 MiB), checks every append is answered and durable, and returns
// the number of sync rounds it took.
func steadyStream(t *testing.T, b backend, p flush.Sync, run time.Duration) uint64 {
	// Segments large enough for the whole stream: a roll makes the
	// appender wait for the next segment, and a hold ends on that pause.
	l, err := Open(b.fs(t), Config{Dir: t.TempDir(), SegmentSize: 64 << 20, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var answered atomic.Int64
	var failed atomic.Pointer[error]
	c := completer(func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
		answered.Add(1)
	})
	before := syncRounds(l)
	var sent int64
	for stop := time.Now().Add(run); time.Now().Before(stop) && l.Tail() < 60<<20; sent++ {
		if _, err := l.AppendAsync(one("steady"), flush.WaitDurable, c); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); answered.Load() < sent; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d appends answered", answered.Load(), sent)
		}
	}
	if p := failed.Load(); p != nil {
		t.Fatal(*p)
	}
	if d, tail := l.Durable(), l.Tail(); d != tail {
		t.Fatalf("durable offset %d, log ends at %d", d, tail)
	}
	return syncRounds(l) - before
}

// A closed loop of synchronous appenders, which stop arriving once each
// has appended again, is not held for the gap: the hold ends with the
// first slice that sees no arrival.
func TestSyncMinGapClosedLoopNotHeld(t *testing.T) {
	const gap = 2 * time.Second
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			l := openLog(t, b.fs(t), t.TempDir(), flush.Sync{Timeout: 5 * time.Second, MinGap: gap, GapFromRate: 1}, Hint{})
			defer l.Close()
			const n, each = 8, 50
			var wg sync.WaitGroup
			longest := make([]time.Duration, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						t0 := time.Now()
						res, err := l.Append(one("closed"), flush.WaitDurable)
						if err == nil && l.Durable() < res.End {
							err = fmt.Errorf("answered at durable offset %d before its end %d", l.Durable(), res.End)
						}
						if errs[i] = err; err != nil {
							return
						}
						longest[i] = max(longest[i], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("appender %d: %v", i, errs[i])
				}
			}
			if m := slices.Max(longest); m >= gap/2 {
				t.Fatalf("an append of a closed loop waited %v: held for the %v gap", m, gap)
			}
		})
	}
}

type completer func(error)

func (c completer) Complete(_ int64, err error) { c(err) }
