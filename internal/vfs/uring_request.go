package vfs

import (
	"io"
	"io/fs"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reqKind says what a request asks of the ring.
type reqKind uint8

const (
	reqWrite  reqKind = iota // WriteAt: WRITE
	reqWritev                // Writev, and WritevSync's write: WRITEV
)

// iovMax is the most iovecs one WRITEV may carry (UIO_MAXIOV); longer
// vectors are written in chunks.
const iovMax = 1024

// request is one File call run on the ring. The caller fills the inputs
// and queues it; from then until it is answered only the leader (the
// caller holding uringFS.lead) touches it. The leader runs it in rounds,
// each a write of the next chunk (at most iovMax iovecs); a short write
// leaves the remainder to the next round.
type request struct {
	// inputs
	kind reqKind
	fd   int
	name string
	off  int64    // file offset of the next byte to write
	buf  []byte   // reqWrite: bytes not yet written
	bufs [][]byte // the caller's buffers, referenced until answered

	// progress, owned by the leader
	iovs []unix.Iovec // iovs[iov:] not yet written; capacity reused
	iov  int
	left int64 // bytes not yet written
	slot int   // index in the leader's batch

	// the round in flight
	chunk   int64 // bytes asked of the write in flight; 0: nothing left
	pending int   // completions this round still expects (0 or 1)
	wres    int32

	// outputs
	n        int
	err      error
	answered bool // set by the leader; read under uringFS.lead
}

// begin prepares progress state from the inputs.
func (r *request) begin() {
	r.n, r.err, r.iov, r.left = 0, nil, 0, 0
	switch r.kind {
	case reqWrite:
		r.left = int64(len(r.buf))
	case reqWritev:
		r.iovs = r.iovs[:0]
		for _, b := range r.bufs {
			if len(b) == 0 {
				continue
			}
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			r.iovs = append(r.iovs, v)
			r.left += int64(len(b))
		}
	}
}

// chunkIovs returns the iovecs of the next write.
func (r *request) chunkIovs() []unix.Iovec {
	return r.iovs[r.iov:min(r.iov+iovMax, len(r.iovs))]
}

// nextRound decides the write of the next round and how many
// completions it will produce (0: nothing left to do).
func (r *request) nextRound() {
	r.chunk, r.wres, r.pending = r.left, 0, 0
	if r.kind != reqWrite && len(r.iovs)-r.iov > iovMax {
		r.chunk = 0
		for _, v := range r.chunkIovs() {
			r.chunk += int64(v.Len)
		}
	}
	if r.chunk > 0 {
		r.pending = 1
	}
}

// complete records the round's completion; it reports whether the round
// is over.
func (r *request) complete(res int32) bool {
	r.wres = res
	r.pending--
	return r.pending == 0
}

// advance applies a finished round and reports whether the request is
// done (r.err set on failure).
func (r *request) advance() bool {
	switch {
	case r.wres < 0:
		return r.fail(r.writeOp(), syscall.Errno(-r.wres))
	case r.wres == 0:
		return r.fail(r.writeOp(), io.ErrShortWrite)
	}
	r.consume(int64(r.wres))
	return r.left == 0
}

func (r *request) writeOp() string {
	if r.kind == reqWrite {
		return "pwrite"
	}
	return "pwritev"
}

func (r *request) fail(op string, err error) bool {
	r.err = &fs.PathError{Op: op, Path: r.name, Err: err}
	return true
}

// consume records n bytes written: it moves the offset and the remaining
// buffer or iovecs past them.
func (r *request) consume(n int64) {
	r.left -= n
	r.off += n
	r.n += int(n)
	if r.kind == reqWrite {
		r.buf = r.buf[n:]
		return
	}
	for n > 0 {
		v := &r.iovs[r.iov]
		if int64(v.Len) <= n {
			n -= int64(v.Len)
			r.iov++
			continue
		}
		v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), n))
		v.SetLen(int(int64(v.Len) - n))
		n = 0
	}
}

// reset drops every reference to caller memory before the request is
// pooled; the iovec capacity is kept.
func (r *request) reset() {
	clear(r.iovs[:cap(r.iovs)])
	*r = request{iovs: r.iovs[:0]}
}

// reqPool recycles requests so a call allocates nothing in steady state.
type reqPool struct {
	mu   sync.Mutex
	free []*request
}

const reqPoolMax = 1024

func (p *reqPool) get() *request {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		r := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return r
	}
	p.mu.Unlock()
	return &request{}
}

func (p *reqPool) put(r *request) {
	r.reset()
	p.mu.Lock()
	if len(p.free) < reqPoolMax {
		p.free = append(p.free, r)
	}
	p.mu.Unlock()
}
