//go:build linux

package uring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// newRing returns a ring or skips the test when io_uring is unavailable
// (ENOSYS, or EPERM under a seccomp profile or io_uring_disabled).
func newRing(t *testing.T, entries uint32) *Ring {
	t.Helper()
	r, err := New(entries)
	if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func tempFile(t *testing.T) (*os.File, int) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, int(f.Fd())
}

func mustSQE(t *testing.T, r *Ring) *SQE {
	t.Helper()
	s := r.GetSQE()
	if s == nil {
		t.Fatal("GetSQE: ring full")
	}
	return s
}

func mustWait(t *testing.T, r *Ring) CQE {
	t.Helper()
	c, err := r.WaitCQE()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func iovecs(bufs ...[]byte) []unix.Iovec {
	iovs := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iovs[i].Base = &b[0]
		iovs[i].SetLen(len(b))
	}
	return iovs
}

func TestWriteReadBack(t *testing.T) {
	r := newRing(t, 8)
	f, fd := tempFile(t)
	data := []byte("hello, io_uring")
	s := mustSQE(t, r)
	s.PrepWrite(fd, data, 100)
	s.SetUserData(7)
	if n, err := r.SubmitAndWait(1); err != nil || n != 1 {
		t.Fatalf("SubmitAndWait = %d, %v", n, err)
	}
	if c := mustWait(t, r); c.UserData != 7 || c.Res != int32(len(data)) || c.Err() != nil {
		t.Fatalf("write CQE %+v", c)
	}
	got := make([]byte, len(data))
	mustSQE(t, r).PrepRead(fd, got, 100)
	if c := mustWait(t, r); c.Res != int32(len(data)) {
		t.Fatalf("read CQE %+v", c)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %q, want %q", got, data)
	}
	if st, _ := f.Stat(); st.Size() != 100+int64(len(data)) {
		t.Fatalf("size %d", st.Size())
	}
	if r.InFlight() != 0 {
		t.Fatalf("InFlight = %d after reaping", r.InFlight())
	}
}

func TestWritev(t *testing.T) {
	r := newRing(t, 8)
	f, fd := tempFile(t)
	a, b, c := []byte("aaaa"), []byte("bb"), []byte("cccccc")
	mustSQE(t, r).PrepWritev(fd, iovecs(a, b, c), 3)
	if cqe := mustWait(t, r); cqe.Res != 12 {
		t.Fatalf("writev CQE %+v", cqe)
	}
	got, _ := os.ReadFile(f.Name())
	if want := "\x00\x00\x00aaaabbcccccc"; string(got) != want {
		t.Fatalf("file %q, want %q", got, want)
	}
}

func TestLinkedWritevFsync(t *testing.T) {
	r := newRing(t, 8)
	f, fd := tempFile(t)
	w := mustSQE(t, r)
	w.PrepWritev(fd, iovecs([]byte("0123"), []byte("4567")), 0)
	w.SetUserData(1)
	w.Link()
	s := mustSQE(t, r)
	s.PrepFsync(fd, true)
	s.SetUserData(2)
	if n, err := r.SubmitAndWait(2); err != nil || n != 2 {
		t.Fatalf("one submission of the pair: %d, %v", n, err)
	}
	if r.CQReady() != 2 {
		t.Fatalf("CQReady = %d, want 2", r.CQReady())
	}
	res := map[uint64]int32{}
	if n := r.Reap(func(ud uint64, r int32, _ uint32) { res[ud] = r }); n != 2 {
		t.Fatalf("reaped %d", n)
	}
	if res[1] != 8 || res[2] != 0 {
		t.Fatalf("results %v, want write 8 and fsync 0", res)
	}
	got, _ := os.ReadFile(f.Name())
	if string(got) != "01234567" {
		t.Fatalf("file %q", got)
	}
}

func TestFailedLinkCancelsFsync(t *testing.T) {
	r := newRing(t, 8)
	_, fd := tempFile(t)
	w := mustSQE(t, r)
	w.PrepWritev(-1, iovecs([]byte("x")), 0) // bad fd
	w.SetUserData(1)
	w.Link()
	s := mustSQE(t, r)
	s.PrepFsync(fd, true)
	s.SetUserData(2)
	if _, err := r.SubmitAndWait(2); err != nil {
		t.Fatal(err)
	}
	errs := map[uint64]error{}
	r.Reap(func(ud uint64, res int32, _ uint32) { errs[ud] = ResError(res) })
	var errno syscall.Errno
	if !errors.As(errs[1], &errno) || errno != syscall.EBADF {
		t.Fatalf("bad fd write: %v, want EBADF as syscall.Errno", errs[1])
	}
	if !errors.Is(errs[2], syscall.ECANCELED) {
		t.Fatalf("linked fsync: %v, want ECANCELED", errs[2])
	}
}

func TestBatch64(t *testing.T) {
	r := newRing(t, 64)
	f, fd := tempFile(t)
	for i := range 64 {
		buf := bytes.Repeat([]byte{byte(i)}, 512)
		s := mustSQE(t, r)
		s.PrepWrite(fd, buf, uint64(i*512))
		s.SetUserData(uint64(1000 + i))
	}
	if r.GetSQE() != nil {
		t.Fatal("65th SQE on a 64-entry ring")
	}
	if n, err := r.SubmitAndWait(64); err != nil || n != 64 {
		t.Fatalf("SubmitAndWait(64) = %d, %v", n, err)
	}
	seen := make(map[uint64]bool)
	r.Reap(func(ud uint64, res int32, _ uint32) {
		if res != 512 || seen[ud] || ud < 1000 || ud >= 1064 {
			t.Errorf("CQE ud=%d res=%d", ud, res)
		}
		seen[ud] = true
	})
	if len(seen) != 64 {
		t.Fatalf("%d completions", len(seen))
	}
	got, _ := os.ReadFile(f.Name())
	for i := range 64 {
		if !bytes.Equal(got[i*512:(i+1)*512], bytes.Repeat([]byte{byte(i)}, 512)) {
			t.Fatalf("block %d wrong", i)
		}
	}
}

func TestProbe(t *testing.T) {
	r := newRing(t, 4)
	if err := r.Probe(OpNop, OpWrite, OpWritev, OpRead, OpFsync); err != nil {
		t.Fatal(err)
	}
	err := r.Probe(OpWrite, Op(250))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Probe(250) = %v, want ErrUnsupported", err)
	}
}

func TestRingFull(t *testing.T) {
	r := newRing(t, 4)
	if r.SQEntries() != 4 || r.CQEntries() != 8 {
		t.Fatalf("entries %d/%d", r.SQEntries(), r.CQEntries())
	}
	// Overfill the completion ring (8) without reaping: 5 rounds of 4.
	const rounds = 5
	for round := range rounds {
		for i := range 4 {
			mustSQE(t, r).SetUserData(uint64(round*4 + i)) // zeroed SQE is a NOP
		}
		if r.GetSQE() != nil {
			t.Fatal("GetSQE on a full submission ring")
		}
		if n, err := r.Submit(); err != nil || n != 4 {
			t.Fatalf("round %d: Submit = %d, %v", round, n, err)
		}
	}
	if _, err := r.SubmitAndWait(rounds * 4); err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint64]bool)
	for len(seen) < rounds*4 {
		c := mustWait(t, r)
		if seen[c.UserData] || c.Res != 0 {
			t.Fatalf("CQE %+v", c)
		}
		seen[c.UserData] = true
	}
	if _, ok := r.PeekCQE(); ok || r.InFlight() != 0 {
		t.Fatalf("leftover completions, InFlight=%d", r.InFlight())
	}
}

func TestWaitNothingInFlight(t *testing.T) {
	r := newRing(t, 4)
	if _, err := r.WaitCQE(); !errors.Is(err, ErrNothingInFlight) {
		t.Fatalf("WaitCQE on idle ring = %v", err)
	}
}

func TestCloseTwice(t *testing.T) {
	r := newRing(t, 4)
	f, fd := tempFile(t)
	mustSQE(t, r).PrepWrite(fd, []byte("drained"), 0) // prepared, never submitted
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got, _ := os.ReadFile(f.Name()); string(got) != "drained" {
		t.Fatalf("Close did not drain the prepared write: %q", got)
	}
	if r.GetSQE() != nil {
		t.Fatal("GetSQE after Close")
	}
	if _, err := r.Submit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close = %v", err)
	}
	if err := r.Probe(OpNop); !errors.Is(err, ErrClosed) {
		t.Fatalf("Probe after Close = %v", err)
	}
}

// TestBuffersPinned drops every reference to the write buffers before the
// submission and collects garbage: the ring must keep them alive.
func TestBuffersPinned(t *testing.T) {
	r := newRing(t, 16)
	f, fd := tempFile(t)
	for i := range 16 {
		mustSQE(t, r).PrepWritev(fd, iovecs(bytes.Repeat([]byte{'a' + byte(i)}, 4096)), uint64(i*4096))
	}
	runtime.GC()
	runtime.GC()
	_ = make([]byte, 1<<20) // reuse freed memory if the buffers were freed
	if _, err := r.SubmitAndWait(16); err != nil {
		t.Fatal(err)
	}
	r.Reap(func(_ uint64, res int32, _ uint32) {
		if res != 4096 {
			t.Errorf("res %d", res)
		}
	})
	got, _ := os.ReadFile(f.Name())
	for i := range 16 {
		if !bytes.Equal(got[i*4096:(i+1)*4096], bytes.Repeat([]byte{'a' + byte(i)}, 4096)) {
			t.Fatalf("block %d corrupted", i)
		}
	}
}

func TestSteadyStateNoAlloc(t *testing.T) {
	r := newRing(t, 8)
	_, fd := tempFile(t)
	buf := make([]byte, 64)
	iovs := iovecs(buf, buf)
	cycle := func() {
		w := r.GetSQE()
		w.PrepWritev(fd, iovs, 0)
		w.Link()
		r.GetSQE().PrepFsync(fd, true)
		if _, err := r.SubmitAndWait(2); err != nil {
			t.Fatal(err)
		}
		r.Reap(func(uint64, int32, uint32) {})
	}
	cycle()
	if n := testing.AllocsPerRun(50, cycle); n != 0 {
		t.Fatalf("%v allocations per submit/reap cycle", n)
	}
}

func TestResError(t *testing.T) {
	if ResError(0) != nil || ResError(5) != nil {
		t.Fatal("non-negative result is an error")
	}
	if err := ResError(-int32(syscall.ENOSPC)); err != syscall.ENOSPC {
		t.Fatalf("ResError(-ENOSPC) = %v", err)
	}
	if OpWritev.String() != "IORING_OP_WRITEV" || Op(99).String() != "IORING_OP_99" {
		t.Fatal("Op.String")
	}
}

// TestRelieve drives the EAGAIN/EBUSY handling directly (Linux 6.x rarely
// returns either): completions move to the backlog and are still delivered
// in order; with nothing left in the kernel it gives the error back.
func TestRelieve(t *testing.T) {
	r := newRing(t, 4)
	if err := r.relieve(unix.EBUSY); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("relieve with nothing in flight = %v", err)
	}
	for i := range 3 {
		s := mustSQE(t, r)
		s.PrepNop()
		s.SetUserData(uint64(i))
	}
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if err := r.relieve(unix.EAGAIN); err != nil {
		t.Fatal(err)
	}
	if r.backlog.len() != 3 || r.kernelReady() != 0 {
		t.Fatalf("backlog %d, kernel ring %d", r.backlog.len(), r.kernelReady())
	}
	if err := r.relieve(unix.EAGAIN); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("relieve with everything reaped into the backlog = %v", err)
	}
	if _, err := r.SubmitAndWait(3); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if c := mustWait(t, r); c.UserData != uint64(i) {
			t.Fatalf("completion %d has user data %d", i, c.UserData)
		}
	}
	if r.backlog.len() != 0 || r.InFlight() != 0 {
		t.Fatalf("backlog %d, in flight %d", r.backlog.len(), r.InFlight())
	}
}
