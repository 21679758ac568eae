package commitlog

// Recovery judged by the policy that wrote the log: torn multi-piece SYNC
// rounds, corruption below the checkpoint's durable offset, the writer's
// policy from the checkpoint, and the operator's TruncateAt.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/flush"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// appendRound appends the batches in one critical section, so that the
// flush loop writes them in one round, and wakes the loop.
func appendRound(t *testing.T, l *Log, bs ...Batch) []Result {
	t.Helper()
	var rs []Result
	l.mu.Lock()
	for _, b := range bs {
		total := 0
		for i := 0; i < b.Len(); i++ {
			total += b.Size(i) + trailerSize
		}
		r, err := l.appendLocked(b, int64(total), time.Now())
		if err != nil {
			l.mu.Unlock()
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return rs
}

// bigBatch is writer g's i-th record with a body of n bytes (several write
// pieces when n exceeds MaxWrite).
func bigBatch(g, i, n int) *tagged {
	b := taggedBatch(g, i)
	b.m.Body = bytes.Repeat(b.m.Body, n/len(b.m.Body)+1)[:n]
	return b
}

const pieceSize = 4096 // MaxWrite of the multi-piece tests

// TestTornMultiPieceSyncRound: a SYNC_FLUSH round holding a record larger
// than one write piece, followed by small records, is interrupted by a
// power loss before the sync of each of its pieces in turn, keeping random
// sectors of the unsynced piece. Recovery must call it a torn tail (the
// pieces before were synced, only the last is missing parts), keep every
// acknowledged record, and continue at the recovered end.
func TestTornMultiPieceSyncRound(t *testing.T) {
	seed := baseSeed(t)
	for k := range 8 {
		for s := range 16 {
			t.Run(fmt.Sprintf("sync=%d/seed=%d", k, seed+uint64(s)), func(t *testing.T) {
				tornRound(t, rand.New(rand.NewPCG(seed+uint64(s), uint64(k))), k)
			})
		}
	}
}

func tornRound(t *testing.T, rng *rand.Rand, k int) {
	cfg := Config{Dir: crashDir, SegmentSize: 256 << 10, MaxWrite: pieceSize, Policy: flush.DefaultSync, Logger: quiet}
	fsys := crashfs.New()
	l, err := Open(fsys, cfg)
	must(t, err)
	var acks []ackRec
	for i := range 5 {
		b := taggedBatch(0, i)
		r, err := l.Append(b, flush.WaitDurable)
		must(t, err)
		acks = append(acks, ackRec{off: r.Offset, end: r.End, size: int32(b.m.Size()), g: 0, i: i})
	}
	durable := l.Durable()
	opt := crashfs.CrashOptions{Rand: rng, KeepUnsyncedProb: 0.3 + 0.6*rng.Float64(), Sectors: rng.IntN(4) != 0}
	fsys.CrashAt(crashfs.Fault{Op: crashfs.OpSync, PathContains: crashDir, After: k}, opt)
	round := []Batch{bigBatch(1, 0, 5*pieceSize+rng.IntN(pieceSize))}
	for i := range 1 + rng.IntN(6) {
		round = append(round, taggedBatch(2, i))
	}
	appendRound(t, l, round...)
	deadline := time.Now().Add(5 * time.Second)
	for fsys.Crashed() == nil && l.Durable() < l.Tail() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	after := fsys.Crashed()
	if after == nil { // the round needed fewer syncs: crash after it
		after = fsys.CrashWith(opt)
	}
	closeWithin(t, l, 10*time.Second)

	hint := Hint{Offset: durable, Durable: durable, Writer: Writer{Mode: flush.ModeSync, MaxWrite: pieceSize}}
	cfg.Recovery = hint
	l, err = Open(after, cfg)
	if err != nil {
		t.Fatalf("a torn multi-piece round was refused: %v", err)
	}
	defer l.Close()
	if l.Tail() < durable {
		t.Fatalf("recovered end %d below the durable offset %d", l.Tail(), durable)
	}
	for _, a := range acks {
		must(t, checkFrameAt(l, a.off, a.size, a.g, a.i))
	}
	it := l.NewIterator(0)
	defer it.Close()
	for {
		off, rec, err := it.Next(l.Tail())
		must(t, err)
		if rec == nil {
			break
		}
		if v, err := message.Parse(rec); err != nil || !v.CheckBodyCRC() || v.PhysOffset != off {
			t.Fatalf("invalid record at %d after recovery: %v", off, err)
		}
	}
	r, err := l.Append(taggedBatch(3, 0), flush.WaitDurable)
	must(t, err)
	if r.Offset != l.Tail()-(r.End-r.Offset) {
		t.Fatalf("append after recovery at %d", r.Offset)
	}
}

// corruptCopy fills a log of n records on disk, flips a byte inside record
// bad's body and returns the directory and the record offsets.
func corruptCopy(t *testing.T, fsys vfs.FS, n, bad int) (string, []int64, int64) {
	dir := t.TempDir()
	offs, end := fillLog(t, fsys, dir, n)
	patch(t, dir, offs[bad]+90, []byte{0xFF})
	return dir, offs, end
}

// TestDurableCorruptionRefused: a record below the checkpoint's durable
// offset that does not validate is corruption under either writer policy,
// even when it is the last record (which without the durable offset looks
// like a torn tail and would be cut).
func TestDurableCorruptionRefused(t *testing.T) {
	forEachDisk(t, func(t *testing.T, fsys vfs.FS) {
		for _, w := range []Writer{{Mode: flush.ModeSync, MaxWrite: 4096}, {Mode: flush.ModeAsync}} {
			t.Run(w.Mode.String(), func(t *testing.T) {
				dir, offs, end := corruptCopy(t, fsys, 50, 49)
				_, err := Open(fsys, Config{Dir: dir, SegmentSize: 64 << 10, Policy: flush.DefaultAsync,
					Recovery: Hint{Offset: offs[10], Durable: end, Writer: w}})
				var ce *CorruptionError
				if !errors.As(err, &ce) || ce.Offset != offs[49] || ce.NextValid != -1 {
					t.Fatalf("the last durable record corrupt: %v, want a CorruptionError at %d", err, offs[49])
				}
				if !strings.Contains(err.Error(), "durable offset") {
					t.Fatalf("error does not say why: %v", err)
				}
				if m, _ := filepath.Glob(filepath.Join(dir, "*.broken-*")); len(m) != 0 {
					t.Fatalf("a refused open changed the log: %v", m)
				}
				// without the durable offset it is a torn tail (the old rule)
				l, err := Open(fsys, Config{Dir: dir, SegmentSize: 64 << 10, Policy: flush.DefaultAsync, Recovery: Hint{Offset: offs[10], Writer: w}})
				must(t, err)
				defer l.Close()
				if l.Tail() != offs[49] {
					t.Fatalf("tail %d, want %d", l.Tail(), offs[49])
				}
			})
		}
	})
}

// TestWriterPolicyJudgesHoles: the same bad record followed by valid ones
// is a torn tail when the checkpoint says ASYNC_FLUSH wrote the log, also
// when the store now opens under SYNC_FLUSH, and corruption when it says
// SYNC_FLUSH, also when the store now opens under ASYNC_FLUSH. A
// checkpoint that does not say (older format) leaves it to this run's
// policy.
func TestWriterPolicyJudgesHoles(t *testing.T) {
	forEachDisk(t, func(t *testing.T, fsys vfs.FS) {
		cases := []struct {
			writer  Writer
			now     flush.Policy
			corrupt bool
		}{
			{Writer{Mode: flush.ModeAsync}, flush.DefaultSync, false},
			{Writer{Mode: flush.ModeSync, MaxWrite: 4096}, flush.DefaultAsync, true},
			{Writer{}, flush.DefaultAsync, false},
			{Writer{}, flush.DefaultSync, true},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s-now-%s", c.writer.Mode, c.now.Mode()), func(t *testing.T) {
				dir, offs, _ := corruptCopy(t, fsys, 100, 20)
				l, err := Open(fsys, Config{Dir: dir, SegmentSize: 64 << 10, MaxWrite: 4096, Policy: c.now,
					Recovery: Hint{Offset: offs[5], Durable: offs[5], Writer: c.writer}})
				var ce *CorruptionError
				if c.corrupt {
					if !errors.As(err, &ce) || ce.Offset != offs[20] || ce.NextValid != offs[21] {
						t.Fatalf("want corruption at %d, got %v", offs[20], err)
					}
					return
				}
				must(t, err)
				defer l.Close()
				if l.Tail() != offs[20] {
					t.Fatalf("tail %d, want the bad record's offset %d", l.Tail(), offs[20])
				}
			})
		}
	})
}

// TestTruncateAt: the repair cuts only at a boundary behind intact
// records, keeps what it cuts (the tail of the segment in a .broken-<off>
// file, later segments renamed .broken), and the log then opens there.
func TestTruncateAt(t *testing.T) {
	forEachDisk(t, func(t *testing.T, fsys vfs.FS) {
		dir := t.TempDir()
		l := openLog(t, fsys, dir, flush.DefaultSync, Hint{})
		var offs []int64
		for l.Tail() < 2*l.SegmentSize()+100 {
			offs = append(offs, mustAppend(t, l, one(fmt.Sprintf("%05d-%s", len(offs), strings.Repeat("s", 700)))).Offset)
		}
		must(t, l.Close())
		patch(t, dir, offs[20]+90, []byte{0xFF})
		cfg := Config{Dir: dir, SegmentSize: 64 << 10, Policy: flush.DefaultSync, Logger: quiet}
		seg0 := filepath.Join(dir, segmentName(0))
		before, err := os.ReadFile(seg0)
		must(t, err)

		cfg.Recovery = Hint{Offset: offs[5], Durable: offs[len(offs)-1]}
		var ce *CorruptionError
		if _, err := Open(fsys, cfg); !errors.As(err, &ce) || ce.Offset != offs[20] {
			t.Fatalf("want corruption at %d: %v", offs[20], err)
		}
		for _, bad := range []int64{offs[20] + 1, offs[30], -1, 10 << 20} {
			if _, err := TruncateAt(fsys, cfg, bad); err == nil {
				t.Fatalf("TruncateAt(%d) accepted", bad)
			}
		}
		cut, err := TruncateAt(fsys, cfg, offs[20])
		must(t, err)
		if cut.Offset != offs[20] || cut.Timestamp == 0 || len(cut.Kept) != 3 {
			t.Fatalf("cut %+v", cut)
		}
		kept, err := os.ReadFile(seg0 + fmt.Sprintf(".broken-%d", offs[20]))
		must(t, err)
		if !bytes.Equal(kept, bytes.TrimRight(before[offs[20]:], "\x00")) {
			t.Fatal("the .broken copy differs from the bytes cut")
		}
		for _, k := range cut.Kept[1:] {
			if _, err := os.Stat(k); err != nil {
				t.Fatal(err)
			}
		}
		cfg.Recovery = Hint{Offset: offs[5], Durable: offs[20]}
		l, err = Open(fsys, cfg)
		must(t, err)
		defer l.Close()
		if l.Tail() != offs[20] {
			t.Fatalf("tail %d after the repair, want %d", l.Tail(), offs[20])
		}
		mustAppend(t, l, one("after repair"))
	})
}

// forEachDisk runs fn on the file layers that write real files: pwrite,
// and io_uring where the kernel allows it.
func forEachDisk(t *testing.T, fn func(t *testing.T, fsys vfs.FS)) {
	for _, b := range backends() {
		if b.name == "crashfs" {
			continue
		}
		t.Run(b.name, func(t *testing.T) { fn(t, b.fs(t)) })
	}
}

// A cut keeps every byte it removes, also when the last record's CRC ends
// in zero bytes (about 1 record in 256): the copy reaches the end of the
// intact frames after the cut, not just the last non-zero byte.
func TestTruncateAtKeepsZeroEndedCRC(t *testing.T) {
	fsys := vfs.Default()
	dir := t.TempDir()
	l := openLog(t, fsys, dir, flush.DefaultSync, Hint{})
	var last Result
	found := false
	for i := 0; i < 20000 && !found; i++ {
		last = mustAppend(t, l, one(fmt.Sprintf("zero-crc-%d", i)))
		b, err := l.ReadRecord(last.Offset, int32(last.End-last.Offset), nil)
		must(t, err)
		found = b[len(b)-1] == 0
	}
	if !found {
		t.Fatal("no record with a CRC ending in a zero byte in 20000")
	}
	must(t, l.Close())
	cfg := Config{Dir: dir, SegmentSize: 64 << 10, Policy: flush.DefaultSync, Logger: quiet}
	cut, err := TruncateAt(fsys, cfg, last.Offset)
	must(t, err)
	base := last.Offset - last.Offset%(64<<10)
	kept, err := os.ReadFile(filepath.Join(dir, segmentName(base)) + fmt.Sprintf(".broken-%d", last.Offset-base))
	must(t, err)
	if int64(len(kept)) != last.End-last.Offset || len(cut.Kept) != 1 {
		t.Fatalf("kept %d bytes in %v, want the whole record of %d", len(kept), cut.Kept, last.End-last.Offset)
	}
}
