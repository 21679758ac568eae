package engine

// Durability end to end: the checkpoint's record of the writer's flush
// policy decides how recovery judges holes, whatever policy the store
// reopens under; corrupt durable records are refused with the repair
// command, and the repair leaves a store that opens and serves everything
// before the cut.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// putSeqs puts messages from..to one by one and returns their PUT_OKs.
func putSeqs(t *testing.T, s *Store, from, to int) []cfsAck {
	t.Helper()
	var acks []cfsAck
	for seq := from; seq < to; seq++ {
		r := s.PutMessage(cfsMsg(seq))
		if r.Status != PutOK {
			t.Fatalf("put %d: %v %v", seq, r.Status, r.Err)
		}
		acks = append(acks, cfsAck{off: r.Offset, end: r.Offset + int64(r.Size) + 4, seq: seq, qo: r.QueueOffset})
	}
	return acks
}

// TestPolicySwitchAfterPowerLoss: a store written under ASYNC_FLUSH, with
// blocks of its unsynced tail reaching the disk out of order, opens under
// SYNC_FLUSH (the checkpoint says who wrote the tail), and a store written
// under SYNC_FLUSH opens under ASYNC_FLUSH, each with every promised
// PUT_OK intact.
func TestPolicySwitchAfterPowerLoss(t *testing.T) {
	for _, c := range []struct{ writer, reader FlushDiskType }{{AsyncFlush, SyncFlush}, {SyncFlush, AsyncFlush}} {
		t.Run(fmt.Sprintf("%s-then-%s", c.writer, c.reader), func(t *testing.T) {
			for seed := range uint64(4) {
				fsys := crashfs.New()
				cfg := cfsConfig(fsys, c.writer, nil)
				cfg.CommitLogMaxWrite = 4096
				cfg.FlushInterval, cfg.FlushThoroughInterval = time.Hour, time.Hour // ASYNC syncs only when told
				s, err := Open(cfg)
				if err != nil {
					t.Fatal(err)
				}
				acks := putSeqs(t, s, 0, 100)
				if err := s.cl.Flush(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, func() bool { // the checkpoint holds the durable offset
					cp, err := openCheckpoint(fsys, cfsDir+"/checkpoint")
					if err != nil {
						return false
					}
					defer cp.close()
					return cp.last.PhysicOffset == s.DurableOffset() && cp.last.FlushMode != flush.ModeUnknown
				})
				durable := s.DurableOffset()
				acks = append(acks, putSeqs(t, s, 100, 300)...)
				if c.writer == AsyncFlush {
					waitFor(t, func() bool { return s.cl.Written() == s.MaxPhysOffset() })
				}
				rng := rand.New(rand.NewPCG(seed, 7))
				after := fsys.CrashWith(crashfs.CrashOptions{Rand: rng, KeepUnsyncedProb: 0.5, Sectors: true})
				closeStore(t, s)

				var logs cfsLog
				rcfg := cfsConfig(after, c.reader, &logs)
				rcfg.CommitLogMaxWrite = 4096
				s, err = Open(rcfg)
				if err != nil {
					t.Fatalf("seed %d: a %s store after a power loss refused under %s: %v", seed, c.writer, c.reader, err)
				}
				var required []cfsAck
				for _, a := range acks {
					if c.writer == SyncFlush || a.end <= durable {
						required = append(required, a)
					}
				}
				next := verifyStore(t, s, required)
				probeQueues(t, s, next, 9_000_000, &required)
				if c.writer == AsyncFlush && !strings.Contains(logs.String(), "writer=ASYNC_FLUSH") {
					t.Fatalf("seed %d: no torn tail judged as written under ASYNC_FLUSH:\n%s", seed, logs.String())
				}
				closeStore(t, s)
			}
		})
	}
}

// flipByte flips one byte of the commit log at log offset off (crashfs,
// synced).
func flipByte(t *testing.T, fsys *crashfs.FS, segSize, off int64) {
	t.Helper()
	name := fmt.Sprintf("%s/commitlog/%020d", cfsDir, off-off%segSize)
	f, err := fsys.Open(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off%segSize); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off%segSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptDurableRecordRefusedThenRepaired: after a crash, a record
// between the checkpoint's dispatched and durable offsets (recovery
// validates that range; reads check the rest) that does not validate makes Open
// fail with ErrCorrupt naming the repair command, under either policy and
// also when it is the last record; Repair cuts there (keeping a copy) and
// the store opens with every record before the cut, queues and index
// consistent, and takes puts.
func TestCorruptDurableRecordRefusedThenRepaired(t *testing.T) {
	for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
		for _, last := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/last=%v", ft, last), func(t *testing.T) {
				fsys := crashfs.New()
				s := cfsOpen(t, fsys, ft, nil)
				acks := putSeqs(t, s, 0, 300)
				if err := closeStore(t, s); err != nil {
					t.Fatal(err)
				}
				bad := 120
				if last {
					bad = len(acks) - 1
				}
				cfg := cfsConfig(fsys, ft, nil)
				flipByte(t, fsys, cfg.MappedFileSizeCommitLog, acks[bad].off+100)
				// what a crash leaves: the dispatched offset of the last
				// thorough checkpoint lags the durable one, the abort file
				cp, err := openCheckpoint(fsys, cfsDir+"/checkpoint")
				if err != nil {
					t.Fatal(err)
				}
				c := cp.last
				c.DispatchedOffset = acks[50].off
				if err := cp.write(c); err != nil {
					t.Fatal(err)
				}
				cp.close()
				a, err := fsys.Open(cfsDir+"/abort", vfs.Create)
				if err != nil {
					t.Fatal(err)
				}
				a.Close()
				if err := fsys.SyncDir(cfsDir); err != nil {
					t.Fatal(err)
				}

				_, err = Open(cfg)
				want := fmt.Sprintf("mqd repair --store %s --truncate-at %d", cfsDir, acks[bad].off)
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
					t.Fatalf("open with a corrupt durable record: %v\nwant ErrCorrupt naming %q", err, want)
				}
				if err := fsys.Remove(cfsDir + "/abort"); err != nil { // a refused repair must not add it
					t.Fatal(err)
				}
				if _, err := Repair(cfg, acks[bad].off+1); err == nil {
					t.Fatal("Repair inside a record accepted")
				}
				if _, err := fsys.Stat(cfsDir + "/abort"); !vfs.IsNotExist(err) {
					t.Fatalf("a refused repair changed the store (abort file: %v)", err)
				}
				res, err := Repair(cfg, acks[bad].off)
				if err != nil {
					t.Fatal(err)
				}
				if res.Offset != acks[bad].off || len(res.Kept) == 0 {
					t.Fatalf("repair: %+v", res)
				}
				for _, k := range res.Kept {
					if _, err := fsys.Stat(k); err != nil {
						t.Fatalf("kept copy %s: %v", k, err)
					}
				}
				var logs cfsLog
				s = cfsOpen(t, fsys, ft, &logs)
				defer s.Close()
				if s.MaxPhysOffset() != acks[bad].off {
					t.Fatalf("log end %d after the repair, want %d", s.MaxPhysOffset(), acks[bad].off)
				}
				var kept []cfsAck
				for _, a := range acks {
					if a.off < acks[bad].off {
						kept = append(kept, a)
					}
				}
				next := verifyStore(t, s, kept)
				probeQueues(t, s, next, 9_000_000, &kept)
			})
		}
	}
}
