package remoting

import (
	"net"
	"runtime"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

const (
	// inlineBodyMax: bodies up to this size are copied next to their
	// header; larger ones (and every BodyParts slice) go out as their own
	// writev segment.
	inlineBodyMax = 16 << 10
	// keepBufferMax: a larger encode buffer is dropped after use so one
	// burst does not pin memory for the connection's lifetime.
	keepBufferMax = 1 << 20
	// writeChunk: a batch is written whenever this many bytes are encoded,
	// so the encode buffer stays near this size however large the batch.
	// Encoding whole batches, a pipelining producer's thousands of replies
	// (4096 in flight a connection: over 1 MiB) outgrew keepBufferMax, so
	// the buffer was dropped and regrown by doubling for every batch: 3.4%
	// of the broker's CPU at the maximum rate over 10,000 topics, in
	// growslice's copies (issue 14, bench/topics.sh).
	writeChunk = 256 << 10
	// maxYields bounds how often the writer yields while its queue grows
	// before it writes.
	maxYields = 4
)

// outItem is one queued command and an optional completion callback.
type outItem struct {
	cmd  *protocol.Command
	done func(error) // called after the write (nil error) or on failure
	size int64       // counted against the byte budget while queued
	// recycle: cmd is handed back (protocol.Command.Recycle) once
	// written or dropped (Mux.HandleRecycled).
	recycle bool
}

// segment is a writev entry: either inline bytes ending at end of the
// encode buffer, or an external slice.
type segment struct {
	end int    // encode-buffer offset where the inline bytes before ext end
	ext []byte // external slice written after them
}

// batchWriter holds the writer goroutine's reusable buffers.
type batchWriter struct {
	buf  []byte
	segs []segment
	vec  [][]byte
}

// enqueue appends cmd to the write queue and wakes the writer. The command
// must not be modified afterwards.
func (c *Conn) enqueue(cmd *protocol.Command, done func(error)) error {
	return c.enqueueItem(outItem{cmd: cmd, done: done})
}

// enqueueItem is enqueue for a prepared item (its size is computed here).
func (c *Conn) enqueueItem(it outItem) error {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		if it.recycle {
			it.cmd.Recycle()
		}
		return ErrConnClosed
	}
	it.size = queuedSize(it.cmd)
	c.queue = append(c.queue, it)
	c.addBuffered(it.size)
	c.wmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// writeLoop is the only goroutine writing to the socket. It swaps out the
// whole queue and writes it (batchWriter.write).
func (c *Conn) writeLoop() {
	var (
		w     batchWriter
		batch []outItem
	)
	for {
		var ok bool
		batch, ok = c.takeBatch(batch[:0])
		if !ok {
			return
		}
		sent, err := w.write(c, batch)
		var written int64
		for i := range batch {
			written += batch[i].size
			if batch[i].done != nil {
				if i < sent { // handed to the socket by an earlier chunk
					batch[i].done(nil)
				} else {
					batch[i].done(err)
				}
			}
			if batch[i].recycle {
				batch[i].cmd.Recycle()
			}
			batch[i] = outItem{}
		}
		c.addBuffered(-written)
		if err != nil {
			c.logger().Debug("remoting: write failed, closing connection", "err", err)
			c.closeWith(err)
			return
		}
	}
}

// takeBatch waits for queued items and swaps them into dst. It returns
// false when the writer must stop: the connection closed, or a drain was
// requested and the queue is empty (then it closes the connection).
func (c *Conn) takeBatch(dst []outItem) ([]outItem, bool) {
	last, yields := 0, 0
	for {
		c.wmu.Lock()
		n := len(c.queue)
		switch {
		case c.wclosed:
			c.wmu.Unlock()
			return nil, false
		case n > last && yields < maxYields:
			// The queue is still growing: let handlers that are about to
			// reply join this batch. A scheduler yield costs far less than
			// a syscall; a lone reply pays one yield.
			c.wmu.Unlock()
			last = n
			yields++
			runtime.Gosched()
			continue
		case n > 0:
			dst, c.queue = c.queue, dst
			c.wmu.Unlock()
			return dst, true
		case c.drain:
			c.wmu.Unlock()
			c.closeWith(ErrServerClosed)
			return nil, false
		}
		c.wmu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
			return nil, false
		}
	}
}

// closeAfterFlush asks the writer to write what is queued, then close.
func (c *Conn) closeAfterFlush() {
	c.wmu.Lock()
	c.drain = true
	c.wmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// write encodes the batch and writes it with one writev a writeChunk of
// encoded bytes (one writev for all but the largest batches). It stops at
// the first failed write and returns how many of the batch's items were
// handed to the socket whole before it (all of them when err is nil).
func (w *batchWriter) write(c *Conn, batch []outItem) (sent int, err error) {
	w.buf, w.segs = w.buf[:0], w.segs[:0]
	for i := range batch {
		w.encode(c, &batch[i])
		if len(w.buf) >= writeChunk {
			if err := w.flush(c); err != nil {
				return sent, err
			}
			sent = i + 1
		}
	}
	if err := w.flush(c); err != nil {
		return sent, err
	}
	return len(batch), nil
}

// flush writes what is encoded with one writev and empties the buffers.
func (w *batchWriter) flush(c *Conn) error {
	w.vec = w.vec[:0]
	prev := 0
	for _, s := range w.segs {
		if s.end > prev {
			w.vec = append(w.vec, w.buf[prev:s.end])
		}
		w.vec = append(w.vec, s.ext)
		prev = s.end
	}
	if len(w.buf) > prev {
		w.vec = append(w.vec, w.buf[prev:])
	}
	var err error
	if len(w.vec) > 0 {
		if c.cfg.writeTimeout > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.cfg.writeTimeout))
		}
		bufs := net.Buffers(w.vec)
		_, err = bufs.WriteTo(c.nc)
	}
	clear(w.vec)
	clear(w.segs)
	w.buf, w.segs = w.buf[:0], w.segs[:0]
	if cap(w.buf) > keepBufferMax {
		w.buf = nil
	}
	return err
}

// encode appends one command; an unencodable response is replaced by a
// SYSTEM_ERROR response so the caller does not wait for nothing.
func (w *batchWriter) encode(c *Conn, it *outItem) {
	cmd := it.cmd
	buf, err := cmd.AppendHead(w.buf)
	if err != nil {
		c.logger().Error("remoting: cannot encode command", "code", cmd.Code, "err", err)
		if !cmd.IsResponse() {
			if it.done != nil {
				it.done(err)
				it.done = nil
			}
			return
		}
		cmd = protocol.NewResponse(cmd, protocol.ResponseSystemError, "response encoding failed: "+err.Error())
		if buf, err = cmd.AppendHead(w.buf); err != nil {
			return
		}
	}
	w.buf = buf
	if len(cmd.Body) <= inlineBodyMax {
		w.buf = append(w.buf, cmd.Body...)
	} else {
		w.segs = append(w.segs, segment{end: len(w.buf), ext: cmd.Body})
	}
	for _, p := range cmd.BodyParts {
		if len(p) > 0 {
			w.segs = append(w.segs, segment{end: len(w.buf), ext: p})
		}
	}
}
