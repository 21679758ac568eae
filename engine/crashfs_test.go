package engine

// Crash and fault tests of the whole store on crashfs: concurrent puts, a
// crash at a random moment (forgetting unsynced bytes or keeping torn parts
// of them), reopen from what the crash left (checkpoint, abort file, commit
// log, consume queues, index), and the promises of SYNC_FLUSH: every PutOK
// is there intact, queue offsets continue without gaps, consume queues and
// the index agree with the log. Also the clean path, a sticky I/O error and
// FLUSH_DISK_TIMEOUT.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

var (
	cfsSeed = flag.Uint64("engine.crashseed", 0, "base seed of the crashfs store tests (0: from the clock)")
)

const (
	cfsDir     = "/store"
	cfsTopic   = "Crash"
	cfsQueues  = 4
	cfsWriters = 8
)

func cfsBaseSeed(t *testing.T) uint64 {
	s := *cfsSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("base seed %d (replay with -engine.crashseed=%d; goroutine scheduling still varies)", s, s)
	return s
}

// cfsLog collects a store's log lines (to tell the clean path from
// recovery) without printing them.
type cfsLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *cfsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *cfsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// cfsConfig is testConfig on fsys, quiet, with a disk that is never full
// (the store's directory does not exist on the real disk).
//
// Under the race detector the thorough queue flush (index msync) only runs
// at Close: crashfs's Mapping.Sync copies the mapped bytes, which
// index.Service.Put writes concurrently (under the index's mu, while Flush
// holds only fileMu), and the detector reports that copy as a race. With
// a real mmap the kernel reads the pages, not Go code, so there is no Go
// data race; crashfs cannot tell. See the report of the crash tests.
func cfsConfig(fsys vfs.FS, ft FlushDiskType, logw io.Writer) Config {
	cfg := testConfig(cfsDir, ft)
	if raceEnabled {
		cfg.QueueFlushThoroughInterval = time.Hour
	}
	cfg.FS = fsys
	if logw == nil {
		logw = io.Discard
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logw, nil))
	cfg.Retention.DiskUsage = func(string) (float64, error) { return 0.1, nil }
	return cfg
}

// cfsOpen opens the store on fsys, adding its log lines to logs (when not
// nil) and, should Open fail, to the failure. A failure with the signature
// of the torn consume-queue entry bug (see TestCrashfsTornConsumeQueueEntry)
// fails like any other.
func cfsOpen(t *testing.T, fsys vfs.FS, ft FlushDiskType, logs *cfsLog) *Store {
	t.Helper()
	return cfsOpenWith(t, fsys, ft, testMaxWrite, logs)
}

// cfsOpenWith is cfsOpen with the commit log's write piece.
func cfsOpenWith(t *testing.T, fsys vfs.FS, ft FlushDiskType, maxWrite int64, logs *cfsLog) *Store {
	t.Helper()
	if logs == nil {
		logs = new(cfsLog)
	}
	cfg := cfsConfig(fsys, ft, logs)
	cfg.CommitLogMaxWrite = maxWrite
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("open on %s: %v\nstore log:\n%s", fsys.Backend(), err, logs)
	}
	return s
}

// cfsMsg is message seq: queue seq%4, body crashBody(seq), key seq.
func cfsMsg(seq int) *message.Message {
	return msg(cfsTopic, int32(seq%cfsQueues), string(crashBody(seq)), map[string]string{"KEYS": strconv.Itoa(seq)})
}

// cfsAck is a put that returned PUT_OK.
type cfsAck struct {
	off, end int64
	seq      int
	qo       int64
}

// closeStore closes s, failing the test if that hangs; the error is
// returned unchecked (after a crash it is expected).
func closeStore(t *testing.T, s *Store) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Store.Close hangs")
		return nil
	}
}

// cfsRound is one run of the store until a crash.
type cfsRound struct {
	ft         FlushDiskType
	seqBase    int
	crashAfter int64 // PutOKs before the crash
	opt        crashfs.CrashOptions
	// at, when not nil, also arms a crash at the operation it matches
	// (crashfs.CrashAt), e.g. the sync of one piece of a round; whichever
	// comes first crashes the file system.
	at *crashfs.Fault
}

// putUntilCrash puts from cfsWriters goroutines and crashes fsys after
// r.crashAfter PutOKs, while the others go on. It returns the PutOKs, the
// crashed file system and the durable offset right before the crash.
func putUntilCrash(t *testing.T, s *Store, fsys *crashfs.FS, r cfsRound) ([]cfsAck, *crashfs.FS, int64) {
	t.Helper()
	var (
		mu       sync.Mutex
		acks     []cfsAck
		count    atomic.Int64
		crashing atomic.Bool
		once     sync.Once
		after    *crashfs.FS
		durable  int64
		wg       sync.WaitGroup
	)
	if r.at != nil {
		fsys.CrashAt(*r.at, r.opt)
	}
	// crashed reports whether the file system crashed (by CrashAt, or by
	// crash below); until then every put must succeed.
	crashed := func() bool { return crashing.Load() || fsys.Crashed() != nil }
	crash := func() {
		once.Do(func() {
			crashing.Store(true)
			if after = fsys.Crashed(); after == nil {
				durable = s.DurableOffset()
				after = fsys.CrashWith(r.opt)
				return
			}
			// crashed inside an operation: no sync succeeds after it, so the
			// durable offset is frozen at its value at the crash
			durable = s.DurableOffset()
		})
	}
	for g := range cfsWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				seq := r.seqBase + g + cfsWriters*i
				m := cfsMsg(seq)
				res := s.PutMessage(m)
				if res.Status != PutOK {
					if !crashed() {
						t.Errorf("put %d before the crash: %v %v", seq, res.Status, res.Err)
					}
					return
				}
				mu.Lock()
				acks = append(acks, cfsAck{off: res.Offset, end: res.Offset + int64(res.Size) + 4, seq: seq, qo: res.QueueOffset})
				mu.Unlock()
				if count.Add(1) == r.crashAfter {
					crash()
				}
				if r.ft == AsyncFlush {
					// ASYNC puts return at once: pace them so that the
					// crash lands after some interval syncs
					time.Sleep(50 * time.Microsecond)
				}
			}
		}()
	}
	wg.Wait()
	crash()
	closeStore(t, s)
	return acks, after, durable
}

// verifyStore checks a reopened store: the required PutOKs are readable
// and intact, the commit log holds only valid records whose queue offsets
// run from 0 without gaps, each consume queue holds exactly those records,
// and sampled keys are found once through the index. It returns the next
// queue offset of every queue.
func verifyStore(t *testing.T, s *Store, required []cfsAck) []int64 {
	t.Helper()
	for _, a := range required {
		b, err := s.ReadMessage(a.off)
		if err != nil {
			t.Fatalf("PUT_OK message %d at %d lost: %v (log tail %d)", a.seq, a.off, err, s.MaxPhysOffset())
		}
		v, err := message.Parse(b)
		if err != nil || !v.CheckBodyCRC() || !bytes.Equal(v.Body, crashBody(a.seq)) ||
			v.TopicString() != cfsTopic || v.QueueID != int32(a.seq%cfsQueues) || v.QueueOffset != a.qo {
			t.Fatalf("PUT_OK message %d at %d damaged: %v %+v", a.seq, a.off, err, v)
		}
	}
	next := make([]int64, cfsQueues)
	var phys [cfsQueues][]int64
	it := s.cl.NewIterator(s.cl.MinOffset())
	defer it.Close()
	for {
		off, rec, err := it.Next(s.cl.Tail())
		if err != nil {
			t.Fatalf("iterating the recovered log: %v", err)
		}
		if rec == nil {
			break
		}
		v, err := message.Parse(rec)
		if err != nil || !v.CheckBodyCRC() || v.PhysOffset != off {
			t.Fatalf("invalid record at %d in the recovered log: %v", off, err)
		}
		key, _ := v.Property(message.PropKeys)
		seq, _ := strconv.Atoi(key)
		if v.QueueID < 0 || v.QueueID >= cfsQueues || !bytes.Equal(v.Body, crashBody(seq)) {
			t.Fatalf("record at %d: queue %d, key %q, body does not match", off, v.QueueID, key)
		}
		if v.QueueOffset != next[v.QueueID] {
			t.Fatalf("queue %d: record at %d has queue offset %d, want %d (gap)", v.QueueID, off, v.QueueOffset, next[v.QueueID])
		}
		next[v.QueueID]++
		phys[v.QueueID] = append(phys[v.QueueID], off)
	}
	for q := range int32(cfsQueues) {
		if mn, mx := s.MinOffsetInQueue(cfsTopic, q), s.MaxOffsetInQueue(cfsTopic, q); mn != 0 || mx != next[q] {
			t.Fatalf("consume queue %d holds [%d,%d), the log %d records", q, mn, mx, next[q])
		}
		for off := int64(0); off < next[q]; {
			r := s.GetMessage(cfsTopic, q, off, 32, nil)
			if r.Status != Found || len(r.Messages) == 0 {
				t.Fatalf("queue %d offset %d: %v", q, off, r.Status)
			}
			for _, b := range r.Messages {
				v, err := message.Parse(b)
				if err != nil || v.QueueOffset != off || v.PhysOffset != phys[q][off] {
					t.Fatalf("queue %d entry %d points at %v %+v, want the record at %d", q, off, err, v, phys[q][off])
				}
				off++
			}
			r.Release()
		}
	}
	for i, a := range required {
		if i < len(required)-50 && i%37 != 0 {
			continue
		}
		res, err := s.QueryMessage(cfsTopic, strconv.Itoa(a.seq), 32, 0, time.Now().UnixMilli()+1000)
		if err != nil || len(res.Records) != 1 {
			t.Fatalf("key %d (at %d) through the index: %v, %d records", a.seq, a.off, err, len(res.Records))
		}
	}
	return next
}

// probeQueues puts one message per queue and checks that it gets the next
// queue offset; the probes join acks.
func probeQueues(t *testing.T, s *Store, next []int64, seqBase int, acks *[]cfsAck) {
	t.Helper()
	for q := range cfsQueues {
		seq := seqBase + q // seq%4 == q as seqBase%4 == 0
		res := s.PutMessage(cfsMsg(seq))
		if res.Status != PutOK {
			t.Fatalf("put after recovery: %v %v", res.Status, res.Err)
		}
		if res.QueueOffset != next[q] {
			t.Fatalf("queue %d continues at %d after recovery, want %d", q, res.QueueOffset, next[q])
		}
		next[q]++
		*acks = append(*acks, cfsAck{off: res.Offset, end: res.Offset + int64(res.Size) + 4, seq: seq, qo: res.QueueOffset})
	}
}

var cfsKinds = []struct {
	name string
	opt  func(*rand.Rand) crashfs.CrashOptions
}{
	{"forget-unsynced", func(*rand.Rand) crashfs.CrashOptions { return crashfs.CrashOptions{} }},
	{"torn-prefixes", func(rng *rand.Rand) crashfs.CrashOptions {
		return crashfs.CrashOptions{Rand: rng, KeepUnsyncedProb: 0.2 + 0.8*rng.Float64()}
	}},
	{"torn-sectors", func(rng *rand.Rand) crashfs.CrashOptions {
		return crashfs.CrashOptions{Rand: rng, KeepUnsyncedProb: 0.2 + 0.8*rng.Float64(), Sectors: true}
	}},
}

// TestCrashfsStoreCrashCycles runs, per seed, three rounds of concurrent
// puts each ended by a crash (each round a random kind of crash), on one
// evolving file system, then a clean close and a crash after it. Under
// SYNC_FLUSH every PUT_OK must survive; under ASYNC_FLUSH those below the
// durable offset at the crash. Recovery must always succeed.
func TestCrashfsStoreCrashCycles(t *testing.T) {
	seed := cfsBaseSeed(t)
	for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
		seeds := 10
		if ft == AsyncFlush {
			seeds = 6
		}
		if raceEnabled {
			seeds /= 3 // ~5x slower under the race detector
		}
		for k := range seeds {
			s := seed + uint64(k)
			t.Run(fmt.Sprintf("%s/seed=%d", ft, s), func(t *testing.T) {
				cfsCycles(t, rand.New(rand.NewPCG(s, 0xe9)), ft)
			})
		}
	}
}

func cfsCycles(t *testing.T, rng *rand.Rand, ft FlushDiskType) {
	fsys := crashfs.New()
	s := cfsOpen(t, fsys, ft, nil)
	var acks, pending []cfsAck // pending: PUT_OKs not yet known durable (ASYNC)
	for round := range 3 {
		kind := cfsKinds[rng.IntN(len(cfsKinds))]
		r := cfsRound{ft: ft, seqBase: round * 1_000_000, crashAfter: 1 + rng.Int64N(2500), opt: kind.opt(rng)}
		got, after, durable := putUntilCrash(t, s, fsys, r)
		fsys = after
		var logs cfsLog
		s = cfsOpen(t, fsys, ft, &logs)
		if !strings.Contains(logs.String(), "did not shut down cleanly") {
			t.Fatalf("round %d: reopen after a crash took the clean path", round)
		}
		if s.MaxPhysOffset() < durable {
			t.Fatalf("round %d (%s): recovered end %d below the durable offset %d before the crash", round, kind.name, s.MaxPhysOffset(), durable)
		}
		for _, a := range append(pending, got...) {
			if ft == SyncFlush || a.end <= durable {
				acks = append(acks, a)
			}
		}
		pending = nil
		next := verifyStore(t, s, acks)
		t.Logf("round %d (%s after %d PUT_OKs): %d PUT_OKs in all, log end %d, durable before the crash %d", round, kind.name, r.crashAfter, len(acks), s.MaxPhysOffset(), durable)
		probeQueues(t, s, next, round*1_000_000+999_000, &pending)
	}
	acks = append(acks, pending...) // a clean close syncs everything

	// a clean close leaves no abort file; a crash after it loses nothing
	tail := s.MaxPhysOffset()
	if err := closeStore(t, s); err != nil {
		t.Fatalf("clean close: %v", err)
	}
	if _, err := fsys.Stat(cfsDir + "/abort"); !vfs.IsNotExist(err) {
		t.Fatalf("abort file after a clean close: %v", err)
	}
	fsys = fsys.Crash()
	var logs cfsLog
	s = cfsOpen(t, fsys, ft, &logs)
	defer s.Close()
	if strings.Contains(logs.String(), "did not shut down cleanly") || strings.Contains(logs.String(), "torn tail") {
		t.Fatalf("reopen after a clean close did not take the clean path:\n%s", logs.String())
	}
	cp, err := openCheckpoint(fsys, cfsDir+"/checkpoint") // not s.cp: the checkpoint loop owns it
	if err != nil {
		t.Fatal(err)
	}
	cpOff := cp.last.PhysicOffset
	cp.close()
	if s.MaxPhysOffset() != tail || cpOff != tail {
		t.Fatalf("after a clean close and a crash: log end %d, checkpoint %d, want %d", s.MaxPhysOffset(), cpOff, tail)
	}
	next := verifyStore(t, s, acks)
	probeQueues(t, s, next, 9_000_000, &acks)
}

// TestCrashfsStickySyncError: once an fdatasync of the commit log fails,
// the put waiting for it and every later put get SERVICE_NOT_AVAILABLE,
// never PUT_OK; Close reports the error and leaves the abort file; after
// the process dies the store recovers everything acknowledged and takes
// puts again.
func TestCrashfsStickySyncError(t *testing.T) {
	for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) {
			fsys := crashfs.New()
			s := cfsOpen(t, fsys, ft, nil)
			var acks []cfsAck
			put := func(seq int) PutResult {
				res := s.PutMessage(cfsMsg(seq))
				if res.Status == PutOK {
					acks = append(acks, cfsAck{off: res.Offset, end: res.Offset + int64(res.Size) + 4, seq: seq, qo: res.QueueOffset})
				}
				return res
			}
			for seq := range 40 {
				if r := put(seq); r.Status != PutOK {
					t.Fatalf("put %d: %v %v", seq, r.Status, r.Err)
				}
			}
			durable := s.DurableOffset() // SYNC: the end; ASYNC: set again below
			if ft == SyncFlush && durable != s.MaxPhysOffset() {
				t.Fatalf("SYNC_FLUSH: durable %d, end %d after PUT_OKs", durable, s.MaxPhysOffset())
			}
			fsys.Inject(crashfs.Fault{Op: crashfs.OpSync, PathContains: cfsDir + "/commitlog/"})

			// concurrent puts meet the failure
			var wg sync.WaitGroup
			var mu sync.Mutex
			statuses := map[PutStatus]int{}
			for g := range cfsWriters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 50 {
						seq := 1000 + g + cfsWriters*i
						res := s.PutMessage(cfsMsg(seq))
						mu.Lock()
						statuses[res.Status]++
						if res.Status == PutOK {
							acks = append(acks, cfsAck{off: res.Offset, end: res.Offset + int64(res.Size) + 4, seq: seq, qo: res.QueueOffset})
						}
						mu.Unlock()
						if res.Status != PutOK {
							// CREATE_MAPPED_FILE_FAILED: the fault hit the
							// next segment's preparation (its fdatasync) first.
							if (res.Status != ServiceNotAvailable && res.Status != CreateMappedFileFailed) || !errors.Is(res.Err, syscall.EIO) {
								t.Errorf("put %d after a failed fdatasync: %v %v", seq, res.Status, res.Err)
							}
							return
						}
					}
				}()
			}
			wg.Wait()
			if ft == SyncFlush && statuses[PutOK] > 0 {
				t.Fatalf("%d puts got PUT_OK although no fdatasync succeeded", statuses[PutOK])
			}
			if ft == AsyncFlush {
				// the flush loop meets the fault within its interval
				waitFor(t, func() bool { return s.cl.Err() != nil })
				durable = s.DurableOffset()
			}
			for seq := 2000; seq < 2010; seq++ {
				if r := put(seq); r.Status != ServiceNotAvailable || !errors.Is(r.Err, s.cl.Err()) {
					t.Fatalf("put after the failure: %v %v", r.Status, r.Err)
				}
			}
			if s.DurableOffset() != durable {
				t.Fatalf("durable offset moved from %d to %d without a successful sync", durable, s.DurableOffset())
			}
			if err := closeStore(t, s); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close after a failed sync: %v", err)
			}
			if _, err := fsys.Stat(cfsDir + "/abort"); err != nil {
				t.Fatalf("the abort file must stay after a failed close: %v", err)
			}

			fsys = fsys.Crash()
			var logs cfsLog
			s = cfsOpen(t, fsys, ft, &logs)
			defer s.Close()
			if !strings.Contains(logs.String(), "did not shut down cleanly") {
				t.Fatal("reopen after a failed close took the clean path")
			}
			var required []cfsAck
			for _, a := range acks {
				if ft == SyncFlush || a.end <= durable {
					required = append(required, a)
				}
			}
			next := verifyStore(t, s, required)
			probeQueues(t, s, next, 9_000_000, &acks)
		})
	}
}

// commitLogSyncs is the path part of the commit log's files: crashfs's
// sync gate (GateSyncs) holds back or slows their fdatasyncs, to make a
// SYNC_FLUSH put outlive its syncFlushTimeout (crashfs itself has no
// delays).
const commitLogSyncs = "/commitlog/"

// TestCrashfsFlushDiskTimeout: a SYNC_FLUSH put whose fdatasync takes
// longer than syncFlushTimeout gets FLUSH_DISK_TIMEOUT (stored, never
// PUT_OK); once the sync completes the message is durable, readable and
// survives a crash, and puts get PUT_OK again.
func TestCrashfsFlushDiskTimeout(t *testing.T) {
	base := crashfs.New()
	base.GateSyncs(commitLogSyncs, 0)
	fsys := base
	cfg := cfsConfig(fsys, SyncFlush, nil)
	cfg.SyncFlushTimeout = time.Millisecond
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var acks []cfsAck
	for seq := range 10 {
		// a fast sync: 1 ms may still be too short on a loaded machine
		if r := s.PutMessage(cfsMsg(seq)); r.Status == PutOK || r.Status == FlushDiskTimeout {
			acks = append(acks, cfsAck{off: r.Offset, end: r.Offset + int64(r.Size) + 4, seq: seq, qo: r.QueueOffset})
		} else {
			t.Fatalf("put %d: %v %v", seq, r.Status, r.Err)
		}
	}
	waitFor(t, func() bool { return s.DurableOffset() == s.MaxPhysOffset() })

	fsys.HoldSyncs()
	slow := s.PutMessage(cfsMsg(100))
	if slow.Status != FlushDiskTimeout || !slow.Status.Stored() {
		fsys.ReleaseSyncs()
		t.Fatalf("put with a held fdatasync: %v %v, want FLUSH_DISK_TIMEOUT", slow.Status, slow.Err)
	}
	end := slow.Offset + int64(slow.Size) + 4
	if s.DurableOffset() >= end {
		t.Fatal("durable before the held sync completed")
	}
	fsys.ReleaseSyncs()
	waitFor(t, func() bool { return s.DurableOffset() >= end })
	acks = append(acks, cfsAck{off: slow.Offset, end: end, seq: 100, qo: slow.QueueOffset})
	b, err := s.ReadMessage(slow.Offset)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := message.Parse(b); err != nil || !bytes.Equal(v.Body, crashBody(100)) {
		t.Fatalf("timed-out message: %v", err)
	}
	ok := false
	for seq := 101; seq < 110; seq++ {
		r := s.PutMessage(cfsMsg(seq))
		if r.Status != PutOK && r.Status != FlushDiskTimeout {
			t.Fatalf("put after the slow sync: %v %v", r.Status, r.Err)
		}
		ok = ok || r.Status == PutOK
		acks = append(acks, cfsAck{off: r.Offset, end: r.Offset + int64(r.Size) + 4, seq: seq, qo: r.QueueOffset})
	}
	if !ok {
		t.Log("no put beat the 1 ms timeout once the sync was released (loaded machine?)")
	}
	waitFor(t, func() bool { return s.DurableOffset() == s.MaxPhysOffset() })

	// crash: everything durable survives, the timed-out message included
	after := base.Crash()
	closeStore(t, s)
	s = cfsOpen(t, after, SyncFlush, nil)
	defer s.Close()
	verifyStore(t, s, acks)
}

// TestPutReopenEveryBackend runs puts, reads, a clean reopen and queue
// offsets under both flush types on every file layer: pwrite, io_uring
// (where the kernel allows) and crashfs.
func TestPutReopenEveryBackend(t *testing.T) {
	type backend struct {
		name string
		cfg  func(t *testing.T, ft FlushDiskType) Config
	}
	onDisk := func(name string) func(t *testing.T, ft FlushDiskType) Config {
		return func(t *testing.T, ft FlushDiskType) Config {
			cfg := testConfig(t.TempDir(), ft)
			cfg.IOBackend = name
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			return cfg
		}
	}
	bs := []backend{{"pwrite", onDisk("pwrite")}}
	if u, err := vfs.NewUring(8); err == nil {
		u.Close()
		bs = append(bs, backend{"io_uring", onDisk("io_uring")})
	} else {
		t.Logf("io_uring unavailable: %v", err)
	}
	bs = append(bs, backend{"crashfs", func(t *testing.T, ft FlushDiskType) Config {
		return cfsConfig(crashfs.New(), ft, nil)
	}})
	for _, b := range bs {
		t.Run(b.name, func(t *testing.T) {
			forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
				cfg := b.cfg(t, ft)
				s, err := Open(cfg)
				if err != nil {
					t.Fatal(err)
				}
				var acks []cfsAck
				for seq := range 1400 { // > 1 segment of 256 KiB
					r := s.PutMessage(cfsMsg(seq))
					if r.Status != PutOK {
						t.Fatalf("put %d: %v %v", seq, r.Status, r.Err)
					}
					if want := int64(seq / cfsQueues); r.QueueOffset != want {
						t.Fatalf("put %d: queue offset %d, want %d", seq, r.QueueOffset, want)
					}
					acks = append(acks, cfsAck{off: r.Offset, end: r.Offset + int64(r.Size) + 4, seq: seq, qo: r.QueueOffset})
				}
				if s.MaxPhysOffset() < cfg.MappedFileSizeCommitLog {
					t.Fatalf("log end %d: the test should cross a segment", s.MaxPhysOffset())
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if cfg.FS == nil {
					if _, err := os.Stat(cfg.Dir + "/abort"); !os.IsNotExist(err) {
						t.Fatalf("abort file after a clean close: %v", err)
					}
				}
				s, err = Open(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				next := verifyStore(t, s, acks)
				probeQueues(t, s, next, 1_000_000, &acks)
			})
		})
	}
}

// TestCrashfsTornConsumeQueueEntry: a power loss can tear a consume-queue
// entry so that it still looks valid. Entries are 20 bytes and files are
// written in 512-byte sectors (or 4 KiB pages), so entry 102 of a file
// (bytes 2040..2060) straddles the sector boundary at 2048 after its 8-byte
// commit-log offset. If the sector before the boundary keeps its old
// content (the entry's offset bytes still zero) while the next one reached
// the disk, the entry reads as {offset 0, the right size}: "valid" by the
// recovery rule (offset >= 0, size > 0, consumequeue/entry.go valid) and
// kept by TruncateDirty (it ends below the log end). With a checkpoint
// older than the queue file (the normal case: queues are synced by Flush(2)
// between thorough checkpoints) recovery redispatches records the queue
// already holds; the queue's maxPhys, taken from the torn last entry, is
// tiny, so the first of them is a conflicting Put (ErrConflict) and
// engine.Open fails for good with "recovery dispatch stopped at X of Y"
// (engine/engine.go open, engine/queues.go openQueues). With the checkpoint
// past it instead, Open succeeds and the queue serves offset 0's bytes for
// entry 102. The store should open and the queue entry should point at
// its record again (e.g. check the entries above the checkpoint's
// dispatched offset against the log and cut the queue at the first
// mismatch before redispatching).
func TestCrashfsTornConsumeQueueEntry(t *testing.T) {
	fsys := crashfs.New()
	s := cfsOpen(t, fsys, SyncFlush, nil)
	var acks []cfsAck
	for i := range 103 { // entries 0..102 of queue 0
		seq := cfsQueues * i
		r := s.PutMessage(cfsMsg(seq))
		if r.Status != PutOK || r.QueueOffset != int64(i) {
			t.Fatalf("put %d: %v %v, queue offset %d", seq, r.Status, r.Err, r.QueueOffset)
		}
		acks = append(acks, cfsAck{off: r.Offset, end: r.Offset + int64(r.Size) + 4, seq: seq, qo: r.QueueOffset})
	}
	if err := closeStore(t, s); err != nil {
		t.Fatal(err)
	}

	// The state a power loss leaves: the sector [1536, 2048) of the queue
	// file without entry 102's first 8 bytes, the sector after it written;
	// a checkpoint from before records 100..102 were dispatched; the abort
	// file (the run did not end cleanly).
	f, err := fsys.Open(cfsDir+"/consumequeue/"+cfsTopic+"/0/00000000000000000000", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8), 102*20); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cp, err := openCheckpoint(fsys, cfsDir+"/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	c := cp.last
	c.DispatchedOffset = acks[100].off
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

	s = cfsOpen(t, fsys.Crash(), SyncFlush, nil)
	defer s.Close()
	verifyStore(t, s, acks)
}

// TestCrashfsIndexRebuildLostBySecondCrash: under ASYNC_FLUSH the index is
// made durable (thorough checkpoint) while the commit log is not, so after
// a crash its newest file can end past the recovered log. Recovery
// (engine/queues.go openQueues) then drops every index file newer than the
// checkpoint's IndexTimestamp (all of them while no file is full; the
// removal is synced at once) and redispatches from the lowered offset to
// rebuild them; but the rebuilt file only becomes durable (its directory
// entry and content) at the next thorough checkpoint, and the checkpoint's
// dispatchedOffset is not lowered. A second crash before that checkpoint
// leaves no index file and a checkpoint that says everything below
// dispatchedOffset is indexed: the next recovery sees EndPhyOffset() == 0
// (not past the log end), redispatches only from dispatchedOffset, and the
// keys of every message below it are never found again by QueryMessage.
// Flushing the index and queues (or writing a checkpoint with the lowered
// dispatched offset) before Open returns closes the window, which Open now
// does.
func TestCrashfsIndexRebuildLostBySecondCrash(t *testing.T) {
	if raceEnabled {
		t.Skip("needs the thorough queue flush, which cfsConfig turns off under the race detector")
	}
	fsys := crashfs.New()
	cfg := cfsConfig(fsys, AsyncFlush, nil)
	cfg.FlushInterval, cfg.FlushThoroughInterval, cfg.FlushLeastPages = time.Hour, time.Hour, 1<<20 // the log syncs only when told
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var acks []cfsAck
	put := func(from, to int) int64 {
		var ts int64
		for seq := from; seq < to; seq++ {
			r := s.PutMessage(cfsMsg(seq))
			if r.Status != PutOK {
				t.Fatalf("put %d: %v %v", seq, r.Status, r.Err)
			}
			acks = append(acks, cfsAck{off: r.Offset, end: r.Offset + int64(r.Size) + 4, seq: seq, qo: r.QueueOffset})
			ts = r.StoreTimestamp
		}
		return ts
	}
	checkpointOnDisk := func() checkpoint {
		cp, err := openCheckpoint(fsys, cfsDir+"/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		defer cp.close()
		return cp.last
	}
	put(0, 50)
	if err := s.cl.Flush(); err != nil { // the log is durable up to here
		t.Fatal(err)
	}
	durable := s.DurableOffset()
	waitFor(t, func() bool { return checkpointOnDisk().DispatchedOffset == durable })
	last := put(50, 100) // dispatched and indexed, not durable in the log
	waitFor(t, func() bool { return checkpointOnDisk().LogicsTimestamp >= last })
	// the index was flushed before that checkpoint: it ends past the log

	after := fsys.Crash()
	closeStore(t, s)
	acks = acks[:50]
	cfg1 := cfsConfig(after, AsyncFlush, nil)
	cfg1.QueueFlushThoroughInterval = time.Hour // the second crash comes first
	s, err = Open(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	verifyStore(t, s, acks) // the rebuilt index is complete, but not durable

	again := after.Crash()
	closeStore(t, s)
	s = cfsOpen(t, again, AsyncFlush, nil)
	defer s.Close()
	verifyStore(t, s, acks)
}
