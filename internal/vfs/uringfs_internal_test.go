package vfs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mqd/mqd/internal/uring"
	"golang.org/x/sys/unix"
)

func testRing(t *testing.T, entries uint32) *uring.Ring {
	t.Helper()
	r, err := uring.New(entries)
	if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ringTestFS wraps ring with every file's writes sent through it (the tests write unaligned buffers to buffered files).
func ringTestFS(ring *uring.Ring) *uringFS {
	u := newUringFS(ring)
	u.ringBuffered = true
	return u
}

// TestBufferedWritesBypassTheRing: without O_DIRECT a file's writes and
// every Sync are made from the caller's goroutine; with O_DIRECT the
// writes go through the ring.
func TestBufferedWritesBypassTheRing(t *testing.T) {
	u := newUringFS(testRing(t, 16))
	u.lead.Lock() // nobody runs the ring: a request sent to it stays queued
	held := true
	release := func() {
		if held {
			held = false
			u.lead.Unlock()
		}
	}
	t.Cleanup(func() { release(); u.Close() }) // a stuck writer leads, then Close
	f := createIn(t, u)
	done := make(chan error, 1)
	go func() { // through the ring they would wait forever
		_, err := f.WriteAt([]byte("a"), 0)
		if err == nil {
			err = f.WritevSync([][]byte{[]byte("b"), []byte("c")}, 1)
		}
		if err == nil {
			err = f.Sync()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("buffered writes did not return: %d requests queued for the ring", u.queued())
	}
	got := make([]byte, 3)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "abc" {
		t.Fatalf("read %q, %v", got, err)
	}
	if n := u.queued(); n != 0 {
		t.Fatalf("%d requests queued for the ring", n)
	}
	d, err := u.Open(filepath.Join(t.TempDir(), "d"), Create|Direct)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !u.DirectIO(d) {
		t.Skip("no O_DIRECT on this file system")
	}
	buf, err := AlignedBuffer(Alignment)
	if err != nil {
		t.Fatal(err)
	}
	defer FreeAligned(buf)
	wrote := make(chan error, 1)
	go func() { wrote <- d.Writev([][]byte{buf}, 0) }()
	deadline := time.Now().Add(5 * time.Second)
	for u.queued() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := u.queued(); n != 1 {
		t.Fatalf("an O_DIRECT write queued %d requests for the ring, want 1", n)
	}
	release() // the writer leads and is answered, so the buffer outlives the write
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
}

// queued is the number of requests waiting for a leader.
func (u *uringFS) queued() int {
	u.qmu.Lock()
	defer u.qmu.Unlock()
	return len(u.queue)
}

func testUring(t *testing.T) *uringFS {
	t.Helper()
	u := ringTestFS(testRing(t, 16))
	t.Cleanup(func() { u.Close() })
	return u
}

func createIn(t *testing.T, fsys FS) File {
	t.Helper()
	f, err := fsys.Open(filepath.Join(t.TempDir(), "f"), Create)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestRequestShortWritev feeds the request state machine a short WRITEV:
// the next round must write exactly the remainder (iovec advanced
// mid-buffer).
func TestRequestShortWritev(t *testing.T) {
	a, b := []byte("aaaaaaaa"), []byte("bbbb")
	r := &request{kind: reqWritev, off: 100, bufs: [][]byte{a, nil, b}}
	r.begin()
	r.nextRound()
	if r.chunk != 12 || r.pending != 1 || len(r.chunkIovs()) != 2 {
		t.Fatalf("round 1: chunk %d pending %d", r.chunk, r.pending)
	}
	if !r.complete(5) {
		t.Fatal("round not over after its completion")
	}
	if r.advance() {
		t.Fatal("done after a short write")
	}
	r.nextRound()
	iovs := r.chunkIovs()
	if r.off != 105 || r.chunk != 7 || r.pending != 1 || len(iovs) != 2 ||
		iovs[0].Base != &a[5] || iovs[0].Len != 3 || iovs[1].Base != &b[0] {
		t.Fatalf("round 2: off %d chunk %d iovs %+v", r.off, r.chunk, iovs)
	}
	r.complete(7)
	if !r.advance() || r.err != nil || r.n != 12 {
		t.Fatalf("finish: err %v n %d", r.err, r.n)
	}
	r.nextRound()
	if r.pending != 0 {
		t.Fatalf("a finished request asks for %d more completions", r.pending)
	}
}

func TestRequestChunksAtIovMax(t *testing.T) {
	bufs := make([][]byte, iovMax+10)
	for i := range bufs {
		bufs[i] = []byte{byte(i)}
	}
	r := &request{kind: reqWritev, bufs: bufs}
	r.begin()
	r.nextRound()
	if r.chunk != iovMax || r.pending != 1 {
		t.Fatalf("first chunk %d", r.chunk)
	}
	r.complete(iovMax)
	if r.advance() {
		t.Fatal("done after the first chunk")
	}
	r.nextRound()
	if r.chunk != 10 || r.pending != 1 {
		t.Fatalf("last chunk %d", r.chunk)
	}
}

func TestRequestErrors(t *testing.T) {
	r := &request{kind: reqWritev, name: "f", bufs: [][]byte{[]byte("x")}}
	r.begin()
	r.nextRound()
	r.complete(-int32(syscall.EIO))
	if !r.advance() || !errors.Is(r.err, syscall.EIO) {
		t.Fatalf("write EIO: %v", r.err)
	}
	var pe *os.PathError
	if !errors.As(r.err, &pe) || pe.Op != "pwritev" || pe.Path != "f" {
		t.Fatalf("error %#v", r.err)
	}

	r = &request{kind: reqWrite, buf: []byte("xy")}
	r.begin()
	r.nextRound()
	r.complete(0)
	if !r.advance() || !errors.Is(r.err, io.ErrShortWrite) {
		t.Fatalf("zero-byte write: %v", r.err)
	}
}

// TestRealShortWrite makes the kernel write short with RLIMIT_FSIZE (Go
// ignores SIGXFSZ): the WRITEV stops at the limit, the remainder is
// resubmitted and fails with EFBIG.
func TestRealShortWrite(t *testing.T) {
	u := testUring(t)
	f := createIn(t, u)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 10000
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	err := f.WritevSync([][]byte{make([]byte, 6000), make([]byte, 6000)}, 0)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("WritevSync past RLIMIT_FSIZE = %v, want EFBIG", err)
	}
	if size, _ := f.Size(); size != 10000 {
		t.Fatalf("size %d, want the 10000 bytes of the short write", size)
	}
}

// TestBatching queues requests while the ring is led elsewhere: the
// next leader must take all of them into one batch (one submission).
func TestBatching(t *testing.T) {
	u := ringTestFS(testRing(t, 64))
	f := createIn(t, u)
	u.lead.Lock()
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.WritevSync([][]byte{bytes.Repeat([]byte{byte(i)}, 100)}, int64(i*100)); err != nil {
				t.Error(err)
			}
		}()
	}
	for u.queued() < n {
		time.Sleep(time.Millisecond)
	}
	u.lead.Unlock()
	wg.Wait()
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if u.stats.batches != 1 || u.stats.largest != n {
		t.Fatalf("stats %+v, want one batch of %d", u.stats, n)
	}
}

func TestUringClose(t *testing.T) {
	u := ringTestFS(testRing(t, 16))
	dir := t.TempDir()
	f, err := u.Open(filepath.Join(dir, "f"), Create)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for i := range 8 { // racing writers: each call returns nil or ErrClosed
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := f.WritevSync([][]byte{[]byte("x")}, int64(i))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{
		"Sync":        f.Sync(),
		"Writev":      f.Writev([][]byte{[]byte("x")}, 0),
		"Preallocate": u.Preallocate(f, 8192),
	}
	_, checks["WriteAt"] = f.WriteAt([]byte("x"), 0)
	_, checks["ReadAt"] = f.ReadAt(make([]byte, 1), 0)
	_, checks["Open"] = u.Open(filepath.Join(dir, "g"), Create)
	_, checks["Map"] = u.Map(f, 1, false)
	for op, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
}

func TestUringNoAllocs(t *testing.T) {
	u := testUring(t)
	f := createIn(t, u)
	bufs := [][]byte{make([]byte, 512), make([]byte, 512)}
	p := make([]byte, 512)
	for range 3 { // warm the pools
		if err := f.WritevSync(bufs, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(50, func() {
		_ = f.WritevSync(bufs, 0)
		_, _ = f.WriteAt(p, 1024)
		_ = f.Sync()
	}); n != 0 {
		t.Fatalf("%v allocations per WritevSync+WriteAt+Sync", n)
	}
}

// TestRequestResetDropsBuffers checks that a pooled request keeps no
// reference to caller memory.
func TestRequestResetDropsBuffers(t *testing.T) {
	r := &request{kind: reqWritev, bufs: [][]byte{[]byte("abc")}}
	r.begin()
	r.reset()
	iovs := r.iovs[:cap(r.iovs)]
	if r.bufs != nil || r.answered || len(r.iovs) != 0 || iovs[0].Base != nil {
		t.Fatal("reset kept references")
	}
	_ = unsafe.Sizeof(r)
}

// goid is the calling goroutine's id, from its stack header.
func goid() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		return ""
	}
	return string(f[1])
}

// TestLoneCallerRunsTheRing: with nobody else on the ring, a write enters
// the kernel from the caller's own goroutine (no hand-off to another).
func TestLoneCallerRunsTheRing(t *testing.T) {
	u := testUring(t)
	var on []string
	real := u.submit
	u.submit = func(want uint32) (int, error) {
		on = append(on, goid()) // under lead
		return real(want)
	}
	f := createIn(t, u)
	if err := f.WritevSync([][]byte{[]byte("abc")}, 0); err != nil {
		t.Fatal(err)
	}
	me := goid()
	if len(on) == 0 {
		t.Fatal("the write never entered the ring")
	}
	for _, g := range on {
		if g != me {
			t.Fatalf("the ring ran on goroutine %s, the caller is %s", g, me)
		}
	}
}

// TestLeadersAnswerEveryone: many callers at once, each waiting for its
// own write; none may be left queued without a leader, and every write
// lands where it was asked to.
func TestLeadersAnswerEveryone(t *testing.T) {
	u := testUring(t)
	f := createIn(t, u)
	const callers, each = 8, 200
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b := []byte{byte(c), byte(i)}
				if err := f.WritevSync([][]byte{b[:1], b[1:]}, int64((c*each+i)*2)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("callers still waiting; %d requests queued", u.queued())
	}
	got := make([]byte, callers*each*2)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for c := range callers {
		for i := range each {
			if at := (c*each + i) * 2; got[at] != byte(c) || got[at+1] != byte(i) {
				t.Fatalf("bytes at %d = %v, want [%d %d]", at, got[at:at+2], c, i)
			}
		}
	}
}
