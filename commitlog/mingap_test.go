package commitlog

import (
	"slices"
	"sync"
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

// From GapFromRate on, rounds are held: once many appenders keep the log
// busy, an append waits for the gap, and none is lost or answered early.
func TestSyncMinGapFromRate(t *testing.T) {
	const gap = time.Second
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			l := openLog(t, b.fs(t), t.TempDir(), flush.Sync{Timeout: 5 * time.Second, MinGap: gap, GapFromRate: 500}, Hint{})
			defer l.Close()
			const n = 32
			var wg sync.WaitGroup
			longest := make([]time.Duration, n)
			errs := make([]error, n)
			stop := time.Now().Add(2 * gap)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(stop) {
						t0 := time.Now()
						if _, errs[i] = l.Append(one("busy"), flush.WaitDurable); errs[i] != nil {
							return
						}
						longest[i] = max(longest[i], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			held := false
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("appender %d: %v", i, errs[i])
				}
				held = held || longest[i] >= gap/2
			}
			if !held {
				t.Fatalf("%d appenders in a loop for %v: no append waited for the %v gap (longest %v)", n, 2*gap, gap, slices.Max(longest))
			}
			if d, tail := l.Durable(), l.Tail(); d != tail {
				t.Errorf("durable offset %d, log ends at %d", d, tail)
			}
		})
	}
}
