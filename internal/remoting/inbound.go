package remoting

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/protocol"
)

// Inbound limits (SECURITY.md, "Transport limits").
//
// A server's connections share one budget of inbound bytes: the buffers
// of frames being read and of requests whose handler has not returned.
// A frame's buffer grows as its bytes arrive (first chunk inboundChunk)
// and every growth is taken from the budget first; a read loop whose next
// chunk does not fit stops reading (TCP back-pressure) until bytes are
// released. A frame larger than the whole budget still runs once nothing
// else holds any. A frame's first chunk (inboundChunk) is counted but
// never waits, so requests that fit in it (nearly all) are served while
// stalled large frames hold the budget; connections × inboundChunk is
// bounded by the connection limit. So a flood of connections that each start a large frame
// and stall (slowloris) pins at most the budget, not connections × chunk.
//
// Request codes may declare the largest body they use
// (ServerConfig.MaxRequestBody); a larger body is read through a small
// shared scratch buffer and dropped once the header is decoded, never
// held whole, and the request runs without it. Responses nobody waits for
// are dropped the same way.

// Inbound defaults.
const (
	// DefaultMaxInboundBytes is the default budget of inbound frame bytes
	// held across all connections of a server.
	DefaultMaxInboundBytes = 32 << 20
	// inboundChunk is the first buffer of a frame's body; larger frames
	// grow by doubling as their bytes arrive.
	inboundChunk = 16 << 10
)

// inboundBudget is a byte budget shared by the read loops of a server's
// connections. A nil budget admits everything.
type inboundBudget struct {
	max     int64
	mu      sync.Mutex
	used    int64
	waiting int64         // bytes held by frames waiting in acquire
	wake    chan struct{} // closed when used or waiting changes and a read loop waits
	stalls  atomic.Int64
	log     rateLog
	// readBufs: read buffers' bytes above their minimum (reader.go).
	readBufs atomic.Int64
}

func newInboundBudget(max int64) *inboundBudget {
	if max <= 0 {
		return nil
	}
	return &inboundBudget{max: max}
}

// acquire takes n bytes for a frame that holds mine already, waiting
// while they do not fit, unless force is set or no other frame that could
// still release bytes holds any (every other holder waits here too: one of
// them must go on, or none ever would). It reports false if c closed
// while waiting.
func (b *inboundBudget) acquire(n, mine int64, force bool, c *Conn) bool {
	if b == nil || n <= 0 {
		return true
	}
	logged := false
	b.mu.Lock()
	for !force && b.used-b.waiting != mine && b.used+n > b.max {
		b.waiting += mine
		if b.used == b.waiting {
			b.wakeLocked() // every holder waits now: one of them goes on
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake, used := b.wake, b.used
		b.mu.Unlock()
		if !logged {
			logged = true
			b.stalls.Add(1)
			b.log.log(c.logger(), "remoting: inbound byte budget full; connection not read until bytes are released",
				"held", used, "want", n, "budget", b.max)
		}
		var closed bool
		select {
		case <-wake:
		case <-c.done:
			closed = true
		}
		b.mu.Lock()
		b.waiting -= mine
		if closed {
			b.mu.Unlock()
			return false
		}
	}
	b.used += n
	b.mu.Unlock()
	return true
}

func (b *inboundBudget) wakeLocked() {
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}

// takeReadBuffer takes n bytes for the growth of a read buffer
// (reader.go), without waiting: they are counted apart from the frames'
// bytes (a read loop waiting for room must never wait on its own buffer)
// and bounded by a quarter of the budget. A nil budget admits all.
func (b *inboundBudget) takeReadBuffer(n int64) bool {
	if b == nil {
		return true
	}
	if b.readBufs.Add(n) > b.max/4 {
		b.readBufs.Add(-n)
		return false
	}
	return true
}

// releaseReadBuffer returns read-buffer bytes.
func (b *inboundBudget) releaseReadBuffer(n int64) {
	if b != nil {
		b.readBufs.Add(-n)
	}
}

// release returns n bytes and wakes waiting read loops.
func (b *inboundBudget) release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.wakeLocked()
	b.mu.Unlock()
}

// held is the budget's current use.
func (b *inboundBudget) held() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// frameReader reads one connection's frames under the inbound limits.
type frameReader struct {
	c       *Conn
	r       *connReader
	charged int64 // bytes of the current frame taken from the budget
	force   bool  // the current frame answers a pending call: never wait
	prefix  [8]byte
	hdr     []byte   // reused header buffer of small frames (readSmall)
	body    *bodyBuf // pooled body of the current frame, nil if none
}

func newFrameReader(c *Conn) *frameReader {
	return &frameReader{c: c, r: newConnReader(c, c.nc)}
}

// read reads one frame. It returns the command and the bytes its buffer
// holds in the inbound budget, to be released when the command is done.
// The pooled body buffer (nil if none) goes back with putBody once
// nothing refers to the command any more.
func (f *frameReader) read() (*protocol.Command, int64, *bodyBuf, error) {
	f.charged, f.force, f.body = 0, false, nil
	cmd, err := f.readFrame()
	if err != nil {
		f.c.cfg.inbound.release(f.charged)
		return nil, 0, nil, err
	}
	return cmd, f.charged, f.body, nil
}

func (f *frameReader) readFrame() (*protocol.Command, error) {
	if _, err := io.ReadFull(f.r, f.prefix[:4]); err != nil {
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(f.prefix[:4])))
	if n < 4 {
		return nil, &protocol.FrameError{Kind: protocol.ErrFrameLength, Detail: fmt.Sprintf("length %d < 4", n)}
	}
	if max := f.c.cfg.maxFrame; n+4 > int64(max) {
		return nil, &protocol.FrameError{Kind: protocol.ErrFrameTooLarge, Detail: fmt.Sprintf("length %d exceeds cap %d", n, max)}
	}
	if _, err := io.ReadFull(f.r, f.prefix[4:]); err != nil {
		return nil, unexpected(err)
	}
	head := 4 + int64(binary.BigEndian.Uint32(f.prefix[4:])&(1<<24-1))
	if head > n {
		return nil, &protocol.FrameError{Kind: protocol.ErrHeaderLength, Detail: fmt.Sprintf("header length %d, frame has %d", head-4, n-4)}
	}
	if n <= inboundChunk {
		return f.readSmall(head, n)
	}
	buf, err := f.fill(nil, 4, int(head), int(n))
	if err != nil {
		return nil, err
	}
	copy(buf, f.prefix[4:])
	cmd, err := f.decode(buf[:head])
	if err != nil || head == n {
		return cmd, err
	}
	if keep, err := f.bodyWanted(cmd, n-head); !keep {
		return cmd, err
	}
	if buf, err = f.fill(buf, int(head), int(n), int(n)); err != nil {
		return nil, err
	}
	cmd.Body = buf[head:n:n]
	return cmd, nil
}

// decode decodes a frame without its length field, typing send headers
// when the server asked for it (ServerConfig.TypedSendHeaders).
func (f *frameReader) decode(frame []byte) (*protocol.Command, error) {
	if f.c.cfg.typedSend {
		return protocol.DecodeRequestFrame(frame)
	}
	return protocol.DecodeFrame(frame)
}

// bodyWanted reports whether cmd's body of n bytes is to be read; one
// that is not (dropBody) is read and dropped here. A failure returns the
// error with false.
func (f *frameReader) bodyWanted(cmd *protocol.Command, n int64) (bool, error) {
	f.force = cmd.IsResponse()
	if !f.dropBody(cmd, n) {
		return true, nil
	}
	if _, err := io.CopyN(io.Discard, f.r, n); err != nil {
		return false, unexpected(err)
	}
	return false, nil
}

// readSmall reads a frame of at most inboundChunk bytes (one budget
// charge, which never waits, as a frame's first chunk): its header into the
// reader's reused buffer (decoding copies all it keeps: only Body aliases a
// frame), its body into a buffer of its own, taken from a pool when the
// code's handler is recycled (Mux.HandleRecycled) so that it goes back once
// the handler returned (issue 14: allocations per send).
func (f *frameReader) readSmall(head, n int64) (*protocol.Command, error) {
	if !f.c.cfg.inbound.acquire(n, f.charged, true, f.c) {
		return nil, ErrConnClosed
	}
	f.charged += n
	if int64(cap(f.hdr)) < head {
		f.hdr = make([]byte, head, max(head, 1024))
	}
	hdr := f.hdr[:head]
	copy(hdr, f.prefix[4:])
	if _, err := io.ReadFull(f.r, hdr[4:]); err != nil {
		return nil, unexpected(err)
	}
	cmd, err := f.decode(hdr)
	if err != nil || head == n {
		return cmd, err
	}
	if keep, err := f.bodyWanted(cmd, n-head); !keep {
		return cmd, err
	}
	var body []byte
	if !cmd.IsResponse() && f.c.cfg.mux != nil && f.c.cfg.mux.recycles(cmd.Code) {
		f.body = takeBody(int(n - head))
		body = f.body.b[:n-head]
	} else {
		body = make([]byte, n-head)
	}
	if _, err := io.ReadFull(f.r, body); err != nil {
		return nil, unexpected(err)
	}
	cmd.Body = body[:len(body):len(body)]
	return cmd, nil
}

// bodyBuf is a pooled request body buffer of a size class.
type bodyBuf struct {
	b     []byte
	class int
}

// Body size classes: 512 B << i, i < bodyClasses, the last inboundChunk.
const (
	minBodyShift = 9
	bodyClasses  = 6
)

var bodyPools [bodyClasses]sync.Pool

func takeBody(n int) *bodyBuf {
	class := max(bits.Len(uint(n-1))-minBodyShift, 0)
	if bb, ok := bodyPools[class].Get().(*bodyBuf); ok {
		return bb
	}
	return &bodyBuf{b: make([]byte, 1<<(class+minBodyShift)), class: class}
}

// putBody returns a body buffer; nothing may refer to its bytes any more.
func putBody(bb *bodyBuf) {
	if bb != nil {
		bodyPools[bb.class].Put(bb)
	}
}

// fill reads into buf[from:to], growing buf (by doubling, capped at the
// frame size n) with every growth taken from the inbound budget first.
func (f *frameReader) fill(buf []byte, from, to, n int) ([]byte, error) {
	for buf == nil || from < to {
		if from >= len(buf) {
			size := min(n, max(inboundChunk, 2*len(buf)))
			if buf == nil {
				size = min(n, max(to, inboundChunk))
			}
			// A frame's first chunk never waits, so small requests are
			// served while stalled large frames fill the budget.
			first := buf == nil && size <= inboundChunk
			if !f.c.cfg.inbound.acquire(int64(size-len(buf)), f.charged, f.force || first, f.c) {
				return nil, ErrConnClosed
			}
			f.charged += int64(size - len(buf))
			next := make([]byte, size)
			copy(next, buf)
			buf = next
		}
		m, err := io.ReadFull(f.r, buf[from:min(to, len(buf))])
		from += m
		if err != nil {
			return nil, unexpected(err)
		}
	}
	return buf, nil
}

// dropBody reports whether cmd's body of n bytes is read and dropped
// instead of kept: a request body larger than its code declares, or the
// body of a response no call waits for.
func (f *frameReader) dropBody(cmd *protocol.Command, n int64) bool {
	c := f.c
	if cmd.IsResponse() {
		if c.hasPending(cmd.Opaque) {
			return false
		}
		c.logger().Debug("remoting: dropping the body of a response without pending call", "opaque", cmd.Opaque, "bytes", n)
		return true
	}
	lim, ok := c.cfg.maxBody[cmd.Code]
	if !ok || n <= int64(lim) {
		return false
	}
	c.cfg.bodyLog.log(c.logger(), "remoting: request body larger than its code uses; dropped unread",
		"code", cmd.Code, "bytes", n, "max", lim)
	return true
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// InboundHeldBytes is what the server's inbound budget holds now: frames
// being read and requests whose handler has not returned.
func (s *Server) InboundHeldBytes() int64 { return s.connCfg.inbound.held() }

// InboundStalls counts read-loop pauses for the inbound budget.
func (s *Server) InboundStalls() int64 {
	if b := s.connCfg.inbound; b != nil {
		return b.stalls.Load()
	}
	return 0
}
