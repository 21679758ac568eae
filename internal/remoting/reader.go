package remoting

import (
	"io"
	"time"
)

// Read buffer sizes of a connection's read loop (issue 14: read syscalls
// per request). A connection starts with minReadBuffer, so an idle one
// costs little; one whose reads keep filling its buffer doubles it up to
// maxReadBuffer, so a busy producer's requests arrive dozens per syscall
// instead of three; one whose reads stop filling it shrinks back.
const (
	minReadBuffer = 4 << 10
	maxReadBuffer = 64 << 10
	// shrinkAfter: reads in a row that filled less than a quarter of the
	// buffer before it halves.
	shrinkAfter = 16
)

// connReader is the read loop's buffered reader. The bytes its buffer
// holds above minReadBuffer are bounded across a server's connections by
// a quarter of its inbound budget (inboundBudget.takeReadBuffer), so a
// flood of busy connections grows only some of them.
// Before each read syscall it extends the connection's idle deadline
// (Conn.extendReadDeadline), so a frame served from the buffer costs no
// clock read.
type connReader struct {
	c        *Conn
	src      io.Reader // the connection (a test's stream)
	buf      []byte
	r, w     int
	extra    int64     // bytes of buf above minReadBuffer taken from the budget
	sparse   int       // reads in a row that filled less than a quarter of buf
	deadline time.Time // when the idle deadline was last extended
}

func newConnReader(c *Conn, src io.Reader) *connReader {
	return &connReader{c: c, src: src, buf: make([]byte, minReadBuffer)}
}

// Read implements io.Reader over the connection.
func (cr *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if cr.r == cr.w {
		if len(p) >= len(cr.buf) { // straight into p: no copy
			return cr.read(p)
		}
		if err := cr.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, cr.buf[cr.r:cr.w])
	cr.r += n
	return n, nil
}

// fill reads into the empty buffer, resized first by how full the last
// read left it.
func (cr *connReader) fill() error {
	cr.r, cr.w = 0, 0
	n, err := cr.read(cr.buf)
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	cr.w = n
	cr.adapt(n)
	return nil
}

// adapt grows the buffer after a read that filled it, and halves it after
// shrinkAfter reads in a row that filled less than a quarter; called with
// the buffer's bytes unread, so a new one copies them.
func (cr *connReader) adapt(n int) {
	size := len(cr.buf)
	switch {
	case n == size && size < maxReadBuffer:
		cr.sparse = 0
		if !cr.c.cfg.inbound.takeReadBuffer(int64(size)) {
			return
		}
		cr.extra += int64(size)
		cr.resize(2 * size)
	case n < size/4 && size > minReadBuffer:
		if cr.sparse++; cr.sparse < shrinkAfter {
			return
		}
		cr.sparse = 0
		cr.resize(size / 2)
		cr.extra -= int64(size / 2)
		cr.c.cfg.inbound.releaseReadBuffer(int64(size / 2))
	default:
		cr.sparse = 0
	}
}

func (cr *connReader) resize(size int) {
	next := make([]byte, size)
	cr.w = copy(next, cr.buf[cr.r:cr.w])
	cr.r = 0
	cr.buf = next
}

// read is one read syscall, after extending the idle deadline.
func (cr *connReader) read(p []byte) (int, error) {
	cr.deadline = cr.c.extendReadDeadline(cr.deadline)
	return cr.src.Read(p)
}

// close returns what the buffer took from the budget.
func (cr *connReader) close() {
	cr.c.cfg.inbound.releaseReadBuffer(cr.extra)
	cr.extra = 0
	cr.buf = nil
}
