package engine

// The power-loss soak: many seeded runs of concurrent puts on crashfs under
// a random flush policy, ended by a power loss at a random moment — often
// at a chosen write or sync of the commit log, in the middle of a
// (multi-piece) round — that keeps random parts of the unsynced bytes; then
// a reopen under a random flush policy (the store must judge the log by the
// policy that wrote it). Property: recovery never refuses the store (it only
// holds a torn tail), every PUT_OK that was promised (all under SYNC_FLUSH,
// those below the durable offset under ASYNC_FLUSH) is there with its
// bytes, queues and index agree with the log, and puts continue. Nothing
// beyond the last sync is required.
//
//	go test ./engine -run PowerLoss -powerloss.runs=1000   # the soak (RELIABILITY.md)
//	go test ./engine -run PowerLoss                        # CI: a bounded number

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/vfs/crashfs"
)

var (
	powerLossRuns = flag.Int("powerloss.runs", 0, "runs of TestPowerLoss (0: 64, or 16 under -race or -short)")
	powerLossSeed = flag.Uint64("powerloss.seed", 0, "base seed of TestPowerLoss (0: from the clock); run k uses seed+k")
)

func TestPowerLoss(t *testing.T) {
	runs := *powerLossRuns
	if runs == 0 {
		runs = 64
		if raceEnabled || testing.Short() {
			runs = 16
		}
	}
	seed := *powerLossSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("%d runs from seed %d (replay one with -powerloss.seed=S -powerloss.runs=1)", runs, seed)
	var st powerLossStats
	start := time.Now()
	for k := range runs {
		s := seed + uint64(k)
		if !t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) { powerLossRun(t, rand.New(rand.NewPCG(s, 0x706c)), &st) }) {
			st.failed++
		}
	}
	t.Logf("%d runs in %v, %d failed: crash at a chosen commit-log write or sync %d, after N PUT_OKs %d; writer SYNC %d / ASYNC %d, reopened under the other policy %d; %d PUT_OKs required and found; %d torn tails cut",
		runs, time.Since(start).Round(time.Millisecond), st.failed, st.atOp, runs-st.atOp, st.sync, runs-st.sync, st.switched, st.required, st.torn)
}

type powerLossStats struct {
	failed, atOp, sync, switched, required, torn int
}

func powerLossRun(t *testing.T, rng *rand.Rand, st *powerLossStats) {
	writer, reader := SyncFlush, SyncFlush
	if rng.IntN(2) == 0 {
		writer = AsyncFlush
	}
	if rng.IntN(2) == 0 {
		reader = AsyncFlush
	}
	kind := cfsKinds[rng.IntN(len(cfsKinds))]
	r := cfsRound{ft: writer, crashAfter: 1 + rng.Int64N(600), opt: kind.opt(rng)}
	if rng.IntN(3) != 0 {
		// a crash as a chosen commit-log write or sync starts: with several
		// pieces per round, often between the pieces of one round
		op := crashfs.OpSync
		if rng.IntN(3) == 0 {
			op = crashfs.OpWrite
		}
		r.at = &crashfs.Fault{Op: op, PathContains: cfsDir + "/commitlog/", After: rng.IntN(120)}
		st.atOp++
		if rng.IntN(3) != 0 { // pieces reaching the disk out of order
			r.opt = crashfs.CrashOptions{Rand: rng, KeepUnsyncedProb: 0.2 + 0.7*rng.Float64(), Sectors: true}
		}
	}
	fsys := crashfs.New()
	// commit-log syncs take a while, as on a disk, so that appends pile up
	// into rounds of several records (crashfs alone is instant)
	fsys.GateSyncs(commitLogSyncs, time.Duration(rng.IntN(400))*time.Microsecond)
	maxWrite := int64(4096) << rng.IntN(3) // 4, 8 or 16 KiB: records span up to 8 pieces
	s := cfsOpenWith(t, fsys, writer, maxWrite, nil)
	acks, after, durable := putUntilCrash(t, s, fsys, r)
	var logs cfsLog
	s = cfsOpenWith(t, after, reader, maxWrite, &logs) // fails the test if recovery refuses
	defer s.Close()
	if s.MaxPhysOffset() < durable {
		t.Fatalf("recovered end %d below the durable offset %d before the crash", s.MaxPhysOffset(), durable)
	}
	var required []cfsAck
	for _, a := range acks {
		if writer == SyncFlush || a.end <= durable {
			required = append(required, a)
		}
	}
	next := verifyStore(t, s, required)
	st.required += len(required)
	probeQueues(t, s, next, 9_000_000, &required)
	if writer == SyncFlush {
		st.sync++
	}
	if writer != reader {
		st.switched++
	}
	if strings.Contains(logs.String(), "torn tail truncated") {
		st.torn++
	}
	t.Logf("writer %s, reopened %s, crash %s (%v), %d PUT_OKs, %d required, durable %d, end %d",
		writer, reader, kind.name, r.at, len(acks), len(required), durable, s.MaxPhysOffset())
}
