package ha

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// Client is the slave side: it keeps a connection to the master's HA
// address, appends what it receives and reports its offset.
type Client struct {
	cfg    Config
	sink   Sink
	master func() string // the master's HA address (may change: learned from the nameserver)
	log    *slog.Logger

	masterEnd atomic.Int64 // the master's written end, from the last data message
	connected atomic.Bool
	// everConnected is set by a session that connected and cleared when
	// Run reports the loss, so an outage is logged once.
	everConnected atomic.Bool
	fatal         atomic.Pointer[error]
}

// NewClient replicates into sink from the address master returns ("" while
// unknown).
func NewClient(sink Sink, master func() string, cfg Config) *Client {
	cfg.defaults()
	return &Client{cfg: cfg, sink: sink, master: master, log: cfg.Logger}
}

// ClientStatus is what a slave knows of its replication.
type ClientStatus struct {
	Connected bool
	MasterEnd int64 // the master's end at its last message
	Offset    int64 // this slave's log end
	Err       error // the master's refusal, if any (replication stopped)
}

// Status reports the link and the lag (MasterEnd − Offset).
func (c *Client) Status() ClientStatus {
	st := ClientStatus{Connected: c.connected.Load(), MasterEnd: c.masterEnd.Load(), Offset: c.sink.MaxPhysOffset()}
	if p := c.fatal.Load(); p != nil {
		st.Err = *p
	}
	return st
}

// Run connects, replicates and reconnects (every second) until ctx ends
// or the master refuses this slave, which it returns (wrapping ErrRefused),
// or orders it to truncate its log (a *TruncateError: truncate.go).
func (c *Client) Run(ctx context.Context) error {
	failures := 0
	for {
		addr := c.master()
		if addr != "" {
			err := c.session(ctx, addr)
			var trunc *TruncateError
			if errors.As(err, &trunc) {
				c.fatal.Store(&err)
				c.log.Warn("ha: replication stopped: this log must be truncated", "master", addr, "at", trunc.At, "end", trunc.LogEnd)
				return err
			}
			if errors.Is(err, ErrRefused) {
				c.fatal.Store(&err)
				c.log.Error("ha: replication stopped", "master", addr, "err", err)
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			// Say it once per outage, not every second of it.
			if c.everConnected.Swap(false) || failures == 0 {
				c.log.Warn("ha: link to master lost; reconnecting every second", "master", addr, "err", err)
			}
			failures++
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// session runs one connection.
func (c *Client) session(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	from := c.sink.MaxPhysOffset()
	crc, ok, err := c.sink.TrailerBefore(from)
	if err != nil {
		return fmt.Errorf("ha: reading this log's last frame: %w", err)
	}
	conn.SetDeadline(time.Now().Add(c.cfg.Housekeeping))
	if _, err := conn.Write(c.epochHello(hello{segmentSize: c.sink.SegmentSize(), offset: from, hasTrailer: ok, trailer: crc, compress: c.cfg.Compress})); err != nil {
		return err
	}
	rep, err := readReply(conn)
	if err != nil {
		return err
	}
	c.masterEnd.Store(rep.masterEnd)
	if rep.status == statusRefuse {
		return fmt.Errorf("%w: %s", ErrRefused, rep.remark)
	}
	if err := c.epochReply(conn, rep, addr, from); err != nil {
		return err
	}
	conn.SetDeadline(time.Time{})
	c.connected.Store(true)
	c.everConnected.Store(true)
	defer c.connected.Store(false)
	c.log.Info("ha: connected to master", "master", addr, "from", from, "masterEnd", rep.masterEnd)
	done := make(chan struct{})
	defer close(done)
	go c.report(conn, done)
	return c.receive(conn)
}

// receive applies data messages until the link fails. Reads go through a
// buffer (one read(2) per message instead of two). With AckDurable only
// the last message of a burst waits for the fdatasync: while the next
// header is already here, a message is appended without waiting, so one
// sync covers the whole burst instead of one sync per message in series
// (what is acknowledged is the durable offset either way).
func (c *Client) receive(conn net.Conn) error {
	in := bufio.NewReaderSize(conn, 64<<10)
	head := make([]byte, frameHead)
	var buf []byte
	var z decompressor // compress.go
	for {
		conn.SetReadDeadline(time.Now().Add(c.cfg.Housekeeping))
		if _, err := io.ReadFull(in, head); err != nil {
			return err
		}
		compressed := takeCompressed(head)
		if compressed && !c.cfg.Compress {
			return fmt.Errorf("ha: master sent a compressed payload this slave did not ask for")
		}
		off, end, n, err := parseFrameHead(head)
		if err != nil {
			return err
		}
		c.masterEnd.Store(end)
		if tail := c.sink.MaxPhysOffset(); off != tail {
			return fmt.Errorf("ha: master sent frames from %d, this log ends at %d", off, tail)
		}
		if n == 0 {
			continue
		}
		if cap(buf) < n+8 {
			buf = make([]byte, n, n+8) // 8 spare bytes: AppendReplica validates in place
		}
		buf = buf[:n]
		if _, err := io.ReadFull(in, buf); err != nil {
			return err
		}
		frames := buf
		if compressed {
			if frames, err = z.unpack(buf); err != nil {
				return err
			}
		}
		durable := c.cfg.AckDurable && in.Buffered() < frameHead
		if _, err := c.sink.AppendReplica(off, frames, durable); err != nil {
			return fmt.Errorf("ha: appending frames from %d: %w", off, err)
		}
	}
}

// acked is the offset this slave acknowledges.
func (c *Client) acked() int64 {
	if c.cfg.AckDurable {
		return c.sink.DurableOffset()
	}
	return c.sink.WrittenOffset()
}

// report sends the acknowledged offset whenever it grows, and at least
// every Heartbeat.
func (c *Client) report(conn net.Conn, done <-chan struct{}) {
	var b [reportSize]byte
	last, lastAt := int64(-1), time.Time{}
	t := time.NewTicker(c.cfg.Heartbeat / 2)
	defer t.Stop()
	for {
		adv := c.sink.Advanced()
		if off := c.acked(); off != last || time.Since(lastAt) >= c.cfg.Heartbeat {
			binary.BigEndian.PutUint64(b[:], uint64(off))
			conn.SetWriteDeadline(time.Now().Add(c.cfg.Housekeeping))
			if _, err := conn.Write(b[:]); err != nil {
				conn.Close()
				return
			}
			last, lastAt = off, time.Now()
		}
		select {
		case <-done:
			return
		case <-adv:
		case <-t.C:
		}
	}
}
