package engine

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// TestCrashfsRepairCrashes crashes at every file operation of Repair (a
// failover truncation of a diverged slave uses it): whatever the crash
// leaves, every record below the cut is intact, the log ends at the cut or
// still at its old end (the cut had not taken effect), and a second Repair
// completes the cut. The bytes above the cut are kept in copies whenever
// they are gone from the log.
func TestCrashfsRepairCrashes(t *testing.T) {
	const n, cutAt = 40, 25
	cutTook := 0 // crashes after which the cut had taken effect
	for op := 0; ; op++ {
		fsys := crashfs.New()
		s := cfsOpen(t, fsys, SyncFlush, nil)
		var acks []cfsAck
		for i := range n {
			r := s.PutMessage(cfsMsg(i))
			if r.Status != PutOK {
				t.Fatalf("put %d: %v", i, r.Status)
			}
			acks = append(acks, cfsAck{off: r.Offset, end: r.Offset + int64(r.Size), seq: i})
		}
		oldEnd := s.MaxPhysOffset()
		if err := closeStore(t, s); err != nil {
			t.Fatal(err)
		}
		cut := acks[cutAt].off
		fsys.CrashAt(crashfs.Fault{Op: crashfs.OpAll, After: op}, crashfs.CrashOptions{})
		_, rerr := Repair(cfsConfig(fsys, SyncFlush, nil), cut)
		after := fsys.Crashed()
		if after == nil {
			if rerr != nil {
				t.Fatal(rerr)
			}
			if op < 4 || cutTook == 0 {
				t.Fatalf("Repair took only %d file operations, %d crashes after the cut", op, cutTook)
			}
			t.Logf("crashed at each of %d file operations; the cut had taken effect after %d of them", op, cutTook)
			return
		}
		s2 := cfsOpen(t, after, SyncFlush, nil)
		end := s2.MaxPhysOffset()
		if end == cut {
			names, err := after.List(cfsDir + "/commitlog")
			if err != nil {
				t.Fatal(err)
			}
			kept := 0
			for _, name := range names {
				if strings.Contains(name, ".broken") {
					kept++
				}
			}
			cutTook++
			if kept == 0 {
				t.Fatalf("crash at op %d: the log was cut at %d but no copy of the cut bytes survived (%v)", op, cut, names)
			}
		}
		if end != cut && end != oldEnd {
			t.Fatalf("crash at op %d: log ends at %d, want the cut %d or the old end %d", op, end, cut, oldEnd)
		}
		for _, a := range acks[:cutAt] {
			rec, err := s2.ReadMessage(a.off)
			if err != nil {
				t.Fatalf("crash at op %d: record %d at %d: %v", op, a.seq, a.off, err)
			}
			v, err := message.Parse(rec)
			if err != nil || !bytes.Equal(v.Body, crashBody(a.seq)) {
				t.Fatalf("crash at op %d: record %d at %d damaged (%v)", op, a.seq, a.off, err)
			}
		}
		if err := closeStore(t, s2); err != nil {
			t.Fatal(err)
		}
		if end != cut {
			if _, err := Repair(cfsConfig(after, SyncFlush, nil), cut); err != nil {
				t.Fatalf("crash at op %d: second repair: %v", op, err)
			}
			s3 := cfsOpen(t, after, SyncFlush, nil)
			if got := s3.MaxPhysOffset(); got != cut {
				t.Fatalf("crash at op %d: after the second repair the log ends at %d, want %d", op, got, cut)
			}
			closeStore(t, s3)
		}
	}
}
