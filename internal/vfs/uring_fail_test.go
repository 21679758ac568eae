package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullPipe returns a pipe whose buffer is full: a write to its write end
// stays in flight until the read end is drained.
func fullPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	junk := make([]byte, 64<<10)
	for {
		if _, err := unix.Write(p[1], junk); err != nil {
			break
		}
	}
	return p[0], p[1]
}

// drain reads the pipe until want bytes of payload have been seen after the
// junk, and returns them.
func drainPipe(t *testing.T, rfd int, want int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		n, err := unix.Read(rfd, buf)
		if err == unix.EAGAIN {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range buf[:n] {
			if c != 0 {
				got = append(got, c)
			}
		}
	}
	return got
}

// TestUringFailureKeepsInFlightBuffers makes io_uring_enter fail while a
// write is in flight (blocked on a full pipe). The caller must not get its
// answer — and so must not free or reuse its buffer — until the kernel
// completed the write; the bytes the kernel wrote are the caller's. Once:
// later waits work, the completion is reaped. Always: the ring is torn
// down, which waits for the write.
func TestUringFailureKeepsInFlightBuffers(t *testing.T) {
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprint("always=", always), func(t *testing.T) { testUringFailure(t, always) })
	}
}

func testUringFailure(t *testing.T, always bool) {
	u := ringTestFS(testRing(t, 16))
	injected := false
	real := u.submit
	u.submit = func(want uint32) (int, error) {
		if !injected {
			injected = true
			if _, err := real(0); err != nil { // the write goes to the kernel
				return 0, err
			}
			return 0, syscall.EIO // then the ring "fails"
		}
		if always {
			return 0, syscall.EIO
		}
		return real(want)
	}
	defer u.Close()
	rfd, wfd := fullPipe(t)
	payload := bytes.Repeat([]byte("P"), 4096)
	buf := append([]byte(nil), payload...)
	r := u.pool.get()
	r.kind, r.fd, r.name, r.buf = reqWrite, wfd, "pipe", buf
	answered := make(chan error, 1)
	go func() {
		u.exec(r)
		answered <- r.err
	}()
	var early error
	select {
	case err := <-answered:
		early = fmt.Errorf("answered (%v) while the kernel still held the buffer", err)
	case <-time.After(100 * time.Millisecond):
	}
	got := drainPipe(t, rfd, len(payload))
	if early != nil {
		t.Fatal(early)
	}
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("never answered after the write completed")
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("kernel wrote %d bytes, not the caller's", len(got))
	}
	// the ring is broken: later calls fail at once instead of hanging
	f := &uringFile{o: &osFile{fd: wfd}, fs: u}
	r2 := f.fs.pool.get()
	r2.kind, r2.fd, r2.name, r2.buf = reqWrite, wfd, "pipe", payload
	if _, err := u.call(f, r2, "pwrite"); err == nil || !errors.Is(err, syscall.EIO) {
		t.Fatalf("write on a broken ring = %v, want the ring's failure", err)
	}
}
