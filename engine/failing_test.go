package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqd/mqd/commitlog"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/vfs"
	"github.com/mqd/mqd/internal/vfs/crashfs"
)

// faultyFS is a real I/O backend (testIOBackend) whose writes and syncs of
// files whose path contains an armed substring fail with an armed error.
type faultyFS struct {
	vfs.FS
	mu   sync.Mutex
	path string // "": nothing armed
	err  error
}

type faultyFile struct {
	vfs.File
	fs *faultyFS
}

func newFaultyFS(t *testing.T) *faultyFS {
	t.Helper()
	inner, err := vfs.Open(vfs.Config{Backend: testIOBackend}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	return &faultyFS{FS: inner}
}

func (f *faultyFS) arm(path string, err error) {
	f.mu.Lock()
	f.path, f.err = path, err
	f.mu.Unlock()
}

func (f *faultyFS) fault(name, op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.path == "" || !strings.Contains(name, f.path) {
		return nil
	}
	return &fs.PathError{Op: op, Path: name, Err: f.err}
}

func (f *faultyFS) Open(name string, flags vfs.OpenFlags) (vfs.File, error) {
	file, err := f.FS.Open(name, flags)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f}, nil
}

func unwrapFaulty(f vfs.File) vfs.File {
	if ff, ok := f.(*faultyFile); ok {
		return ff.File
	}
	return f
}

func (f *faultyFS) Preallocate(file vfs.File, size int64) error {
	if err := f.fault(file.Name(), "preallocate"); err != nil {
		return err
	}
	return f.FS.Preallocate(unwrapFaulty(file), size)
}
func (f *faultyFS) Map(file vfs.File, size int64, w bool) (vfs.Mapping, error) {
	return f.FS.Map(unwrapFaulty(file), size, w)
}
func (f *faultyFS) DirectIO(file vfs.File) bool { return f.FS.DirectIO(unwrapFaulty(file)) }

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fault(f.Name(), "pwrite"); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultyFile) Writev(bufs [][]byte, off int64) error {
	if err := f.fs.fault(f.Name(), "pwritev"); err != nil {
		return err
	}
	return f.File.Writev(bufs, off)
}

func (f *faultyFile) WritevSync(bufs [][]byte, off int64) error {
	if err := f.fs.fault(f.Name(), "pwritev"); err != nil {
		return err
	}
	return f.File.WritevSync(bufs, off)
}

func (f *faultyFile) Sync() error {
	if err := f.fs.fault(f.Name(), "fdatasync"); err != nil {
		return err
	}
	return f.File.Sync()
}

// pullAll reads every message of (topic, queue) from 0; it fails the test
// on any status but FOUND / OFFSET_OVERFLOW_ONE.
func pullAll(t *testing.T, s *Store, topic string, q int32) []string {
	t.Helper()
	var bodies []string
	for off := int64(0); ; {
		r := s.GetMessage(topic, q, off, 32, nil)
		st, next, msgs, err := r.Status, r.NextBeginOffset, len(r.Messages), r.Err
		for _, m := range r.Messages {
			bodies = append(bodies, bodyOf(t, m))
		}
		r.Release()
		if st == OffsetOverflowOne || st == NoMessageInQueue {
			return bodies
		}
		if st != Found || msgs == 0 {
			t.Fatalf("pull %s/%d at %d: %v %v", topic, q, off, st, err)
		}
		off = next
	}
}

func bodyOf(t *testing.T, rec []byte) string {
	t.Helper()
	v, err := message.Parse(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Body)
}

// TestConsumeQueueFailureIsolated: the files of one consume queue fail
// every write and sync (disk full on it). Dispatch must go on for other
// topics, pulls on that queue must fail with StoreReadError, and once the
// disk works again the queue is rebuilt from the log by itself: every
// message, in order, also after a reopen.
func TestConsumeQueueFailureIsolated(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		dir := t.TempDir()
		fsys := newFaultyFS(t)
		cfg := testConfig(dir, ft)
		cfg.FS = fsys
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		put := func(topic string, from, to int) {
			for i := from; i < to; i++ {
				if r := s.PutMessage(msg(topic, 0, fmt.Sprintf("%s-%d", topic, i), nil)); r.Status != PutOK {
					t.Fatalf("put %s %d: %v %v", topic, i, r.Status, r.Err)
				}
			}
		}
		put("A", 0, 20)
		put("B", 0, 20)
		waitFor(t, func() bool { return s.DispatchLag() == 0 })
		s.dispatch.repairEvery.Store(int64(time.Hour)) // no rebuild attempt while the disk fails
		fsys.arm("consumequeue/A/0", syscall.ENOSPC)
		put("A", 20, 60)
		put("B", 20, 60)
		waitFor(t, func() bool { // the next flush takes A/0 out of service
			r := s.GetMessage("A", 0, 0, 1, nil)
			defer r.Release()
			return r.Status == StoreReadError
		})
		r := s.GetMessage("A", 0, 0, 1, nil)
		if !errors.Is(r.Err, syscall.ENOSPC) {
			t.Fatalf("pull on the failed queue: %v %v", r.Status, r.Err)
		}
		r.Release()
		put("B", 60, 80)
		waitFor(t, func() bool { return s.MaxOffsetInQueue("B", 0) == 80 })
		if got := pullAll(t, s, "B", 0); len(got) != 80 || got[79] != "B-79" {
			t.Fatalf("B while A is out of service: %d messages", len(got))
		}
		put("A", 60, 70)
		fsys.arm("", nil) // space is back
		s.dispatch.repairEvery.Store(int64(time.Millisecond))
		waitFor(t, func() bool {
			r := s.GetMessage("A", 0, 0, 1, nil)
			defer r.Release()
			return r.Status == Found && s.MaxOffsetInQueue("A", 0) == 70
		})
		check := func(s *Store) {
			got := pullAll(t, s, "A", 0)
			if len(got) != 70 {
				t.Fatalf("A after rebuild: %d messages, want 70", len(got))
			}
			for i, b := range got {
				if b != fmt.Sprintf("A-%d", i) {
					t.Fatalf("A message %d is %q", i, b)
				}
			}
		}
		check(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(cfg); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(s)
	})
}

// TestDiskFullSendsRefusedThenResume: commit-log writes fail with ENOSPC.
// Sends get a clear answer — SERVICE_NOT_AVAILABLE (ErrDiskFull: not
// stored) or FLUSH_DISK_TIMEOUT (stored, durability unknown), never PUT_OK
// for something that cannot be written under SYNC_FLUSH — and once space
// is back the store takes sends again by itself. Every message that was
// stored is readable, also after a reopen.
func TestDiskFullSendsRefusedThenResume(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		fsys := newFaultyFS(t)
		cfg := testConfig(t.TempDir(), ft)
		cfg.FS = fsys
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var stored []string
		put := func(i int) PutResult {
			body := fmt.Sprintf("m-%d", i)
			r := s.PutMessage(msg("T", 0, body, nil))
			if r.Status.Stored() {
				stored = append(stored, body)
			}
			return r
		}
		i := 0
		for ; i < 10; i++ {
			if r := put(i); r.Status != PutOK {
				t.Fatal(r.Status, r.Err)
			}
		}
		fsys.arm("/commitlog/", syscall.ENOSPC)
		for deadline := time.Now().Add(10 * time.Second); ; i++ {
			r := put(i)
			if r.Status == ServiceNotAvailable && errors.Is(r.Err, commitlog.ErrDiskFull) {
				break
			}
			switch {
			case r.Status == FlushDiskTimeout, r.Status == PutOK && ft == AsyncFlush:
			default:
				t.Fatalf("put %d on a full disk: %v %v", i, r.Status, r.Err)
			}
			if time.Now().After(deadline) {
				t.Fatal("sends never refused while the disk is full")
			}
		}
		fsys.arm("", nil)
		for deadline := time.Now().Add(10 * time.Second); ; i++ {
			r := put(i)
			if r.Status == PutOK {
				break
			}
			if r.Status != ServiceNotAvailable || time.Now().After(deadline) {
				t.Fatalf("put %d after space came back: %v %v", i, r.Status, r.Err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		check := func(s *Store) {
			waitFor(t, func() bool { return s.MaxOffsetInQueue("T", 0) == int64(len(stored)) })
			got := pullAll(t, s, "T", 0)
			if fmt.Sprint(got) != fmt.Sprint(stored) {
				t.Fatalf("read back %d messages, stored %d", len(got), len(stored))
			}
		}
		check(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(cfg); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(s)
	})
}

// TestDamagedRecordNeverServed flips one bit of a durable record in a
// segment that is no longer in memory: a pull must stop before it, a pull
// starting at it must fail with StoreReadError (ErrChecksum), and a view by
// offset must fail; the records around it are served.
func TestDamagedRecordNeverServed(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		dir := t.TempDir()
		s, err := Open(testConfig(dir, ft))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var rs []PutResult
		for i := 0; s.MaxPhysOffset() < 4*(256<<10); i++ {
			r := s.PutMessage(msg("T", 0, fmt.Sprintf("%d-%s", i, strings.Repeat("d", 900)), nil))
			if r.Status != PutOK {
				t.Fatal(r.Status, r.Err)
			}
			rs = append(rs, r)
		}
		if err := s.cl.Flush(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return s.DispatchLag() == 0 })
		const bad = 5
		if s.cl.InMemory(rs[bad].Offset) {
			t.Fatal("the damaged record would be served from memory")
		}
		seg := filepath.Join(dir, "commitlog", fmt.Sprintf("%020d", 0))
		f, err := os.OpenFile(seg, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		at := rs[bad].Offset + int64(rs[bad].Size) - 10 // inside the body
		if _, err := f.ReadAt(b, at); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0x04
		if _, err := f.WriteAt(b, at); err != nil {
			t.Fatal(err)
		}
		f.Close()

		r := s.GetMessage("T", 0, 0, 32, nil)
		if r.Status != Found || len(r.Messages) != bad || r.NextBeginOffset != bad {
			t.Fatalf("pull before the damaged record: %v, %d messages, next %d", r.Status, len(r.Messages), r.NextBeginOffset)
		}
		r.Release()
		r = s.GetMessage("T", 0, bad, 32, nil)
		if r.Status != StoreReadError || !errors.Is(r.Err, commitlog.ErrChecksum) || len(r.Messages) != 0 {
			t.Fatalf("pull at the damaged record: %v %v, %d messages", r.Status, r.Err, len(r.Messages))
		}
		r.Release()
		if _, err := s.ReadMessage(rs[bad].Offset); !errors.Is(err, commitlog.ErrChecksum) {
			t.Fatalf("view of the damaged record: %v", err)
		}
		r = s.GetMessage("T", 0, bad+1, 4, nil)
		if r.Status != Found || len(r.Messages) == 0 {
			t.Fatalf("pull after the damaged record: %v", r.Status)
		}
		r.Release()
	})
}

// TestIndexFailureDoesNotStallDispatch: the next index file cannot be
// created (disk full). Dispatch must go on (pulls see new messages), and
// once space is back the keys of the messages dispatched meanwhile are
// indexed by themselves, also after a reopen.
func TestIndexFailureDoesNotStallDispatch(t *testing.T) {
	forEachFlush(t, func(t *testing.T, ft FlushDiskType) {
		fsys := newFaultyFS(t)
		cfg := testConfig(t.TempDir(), ft)
		cfg.FS = fsys
		cfg.MaxIndexNum = 400 // 399 keys per file
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		keysOf := func(i int) string {
			var ks []string
			for k := 0; k < 10; k++ {
				ks = append(ks, fmt.Sprintf("m%d-k%d", i, k))
			}
			return strings.Join(ks, " ")
		}
		put := func(from, to int) {
			for i := from; i < to; i++ {
				if r := s.PutMessage(msg("T", 0, fmt.Sprint(i), map[string]string{"KEYS": keysOf(i)})); r.Status != PutOK {
					t.Fatal(r.Status, r.Err)
				}
			}
		}
		found := func(s *Store, i int) bool {
			q, err := s.QueryMessage("T", fmt.Sprintf("m%d-k9", i), 64, 0, time.Now().Add(time.Hour).UnixMilli())
			return err == nil && len(q.Records) == 1
		}
		put(0, 30) // 300 keys: the first file
		s.dispatch.repairEvery.Store(int64(time.Hour))
		fsys.arm("/index/", syscall.ENOSPC)
		put(30, 80) // needs a second file
		waitFor(t, func() bool { return s.MaxOffsetInQueue("T", 0) == 80 && s.DispatchLag() == 0 })
		if got := pullAll(t, s, "T", 0); len(got) != 80 {
			t.Fatalf("pulled %d messages while the index fails, want 80", len(got))
		}
		if found(s, 79) {
			t.Fatal("a key indexed although the index file could not be created")
		}
		fsys.arm("", nil)
		s.dispatch.repairEvery.Store(int64(time.Millisecond))
		waitFor(t, func() bool { return found(s, 79) })
		check := func(s *Store) {
			for i := 0; i < 80; i++ {
				if !found(s, i) {
					t.Fatalf("key of message %d not indexed", i)
				}
			}
		}
		check(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(cfg); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(s)
	})
}

// TestCrashWhileQueueOutOfService: a consume queue fails (EIO on its
// files), the store goes on and checkpoints, then the power fails. The
// checkpoint must not vouch for the entries the failed queue missed: after
// recovery every message of both topics is in its queue, in order.
func TestCrashWhileQueueOutOfService(t *testing.T) {
	for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) {
			fsys := crashfs.New()
			s := cfsOpen(t, fsys, ft, nil)
			var firstLost, lastTS int64
			put := func(topic string, from, to int) {
				for i := from; i < to; i++ {
					r := s.PutMessage(msg(topic, 0, fmt.Sprintf("%s-%d", topic, i), nil))
					if r.Status != PutOK {
						t.Fatalf("put %s %d: %v %v", topic, i, r.Status, r.Err)
					}
					if topic == "A" && i == 20 {
						firstLost = r.Offset
					}
					lastTS = r.StoreTimestamp
				}
			}
			checkpointOnDisk := func() checkpoint {
				cp, err := openCheckpoint(fsys, cfsDir+"/checkpoint")
				if err != nil {
					t.Fatal(err)
				}
				defer cp.close()
				return cp.last
			}
			put("A", 0, 20)
			put("B", 0, 20)
			if err := s.cl.Flush(); err != nil {
				t.Fatal(err)
			}
			durable := s.DurableOffset()
			if !raceEnabled { // the thorough flush runs (see cfsConfig)
				waitFor(t, func() bool { return checkpointOnDisk().DispatchedOffset == durable })
			}
			s.dispatch.repairEvery.Store(int64(time.Hour))
			fsys.Inject(crashfs.Fault{Op: crashfs.OpWrite | crashfs.OpSync, PathContains: "consumequeue/A/0"})
			put("A", 20, 50)
			put("B", 20, 50)
			if err := s.cl.Flush(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool {
				r := s.GetMessage("A", 0, 0, 1, nil)
				defer r.Release()
				return r.Status == StoreReadError
			})
			end := s.DurableOffset()
			waitFor(t, func() bool { return checkpointOnDisk().PhysicOffset == end })
			if !raceEnabled { // a thorough checkpoint after everything was dispatched
				waitFor(t, func() bool { return checkpointOnDisk().LogicsTimestamp >= lastTS })
			}
			if got := checkpointOnDisk().DispatchedOffset; got > firstLost {
				t.Fatalf("checkpoint vouches for dispatch up to %d, past A's first lost entry at %d", got, firstLost)
			}
			after := fsys.Crash()
			closeStore(t, s)
			s = cfsOpen(t, after, ft, nil)
			defer s.Close()
			for _, topic := range []string{"A", "B"} {
				got := pullAll(t, s, topic, 0)
				if len(got) != 50 || got[49] != topic+"-49" {
					t.Fatalf("%s after the crash: %d messages", topic, len(got))
				}
			}
		})
	}
}

// TestCloseWhileQueueOutOfService: the store is closed cleanly while a
// consume queue is out of service; the next run restores its entries.
func TestCloseWhileQueueOutOfService(t *testing.T) {
	for _, ft := range []FlushDiskType{SyncFlush, AsyncFlush} {
		t.Run(string(ft), func(t *testing.T) {
			fsys := crashfs.New()
			s := cfsOpen(t, fsys, ft, nil)
			put := func(topic string, from, to int) {
				for i := from; i < to; i++ {
					if r := s.PutMessage(msg(topic, 0, fmt.Sprintf("%s-%d", topic, i), nil)); r.Status != PutOK {
						t.Fatalf("put %s %d: %v %v", topic, i, r.Status, r.Err)
					}
				}
			}
			put("A", 0, 10)
			waitFor(t, func() bool { return s.DispatchLag() == 0 })
			s.dispatch.repairEvery.Store(int64(time.Hour))
			fsys.Inject(crashfs.Fault{Op: crashfs.OpWrite | crashfs.OpSync, PathContains: "consumequeue/A/0"})
			put("A", 10, 30)
			waitFor(t, func() bool {
				r := s.GetMessage("A", 0, 0, 1, nil)
				defer r.Release()
				return r.Status == StoreReadError
			})
			closeStore(t, s)
			fsys.ClearFaults()
			s = cfsOpen(t, fsys, ft, nil)
			defer s.Close()
			if got := pullAll(t, s, "A", 0); len(got) != 30 || got[29] != "A-29" {
				t.Fatalf("A after a clean restart: %d messages", len(got))
			}
			if r := s.PutMessage(msg("A", 0, "next", nil)); r.Status != PutOK || r.QueueOffset != 30 {
				t.Fatalf("put after restart: %v queue offset %d", r.Status, r.QueueOffset)
			}
		})
	}
}
