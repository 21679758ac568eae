package remoting

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// Per-connection byte budget (SECURITY.md, "Transport limits").
//
// A connection's buffered bytes are the responses and requests queued for
// its writer and not yet handed to the socket, plus whatever handlers
// charge to it (parked long polls hold their request). Running handlers
// may also reserve bytes for the response they will produce
// (ServerConfig.ResponseReserve). Before it dispatches a request the read
// loop waits until
//
//	buffered + reserved + reserve <= budget, or
//	nothing reserved and buffered <= budget/2
//
// so a peer that sends requests but does not read the responses stops
// being read (TCP back-pressure) instead of growing a queue; the writer
// keeps draining, and WriteTimeout closes a peer that reads nothing. The
// second clause bounds a burst of pipelined requests whose responses are
// large (QUERY_MESSAGE): at most budget bytes of them run at once. The
// second clause lets a request reserving more than the budget run alone
// once the connection's output is half drained — also on a connection
// whose parked pulls hold a few kilobytes — so its output peaks at half
// the budget plus its response. Output beyond a handler's reservation
// (all of it for codes without one) can pass the budget by at most what
// the handlers running at that moment produce.

// Budget defaults.
const (
	// DefaultMaxConnBytes is the default per-connection byte budget: one
	// maximum frame.
	DefaultMaxConnBytes = 16 << 20
	// DefaultMaxConns is the default limit on open server connections.
	DefaultMaxConns = 10000
	// headerEstimate stands for a queued command's header and frame
	// prefix (responses carry few ext fields; their exact size is only
	// known once encoded).
	headerEstimate = 256
)

// limitLogEvery rate-limits the log lines of hit limits.
const limitLogEvery = 10 * time.Second

// queuedSize is what a queued command counts against its connection's
// budget.
func queuedSize(cmd *protocol.Command) int64 {
	return int64(headerEstimate + len(cmd.Remark) + cmd.BodyLen())
}

// addBuffered adds n (negative: releases) to the connection's buffered
// bytes, tracking the peak and waking a read loop waiting for room.
func (c *Conn) addBuffered(n int64) {
	v := c.buffered.Add(n)
	if n < 0 {
		c.pokeRoom()
		return
	}
	for {
		p := c.peak.Load()
		if v <= p || c.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

func (c *Conn) pokeRoom() {
	select {
	case c.room <- struct{}{}:
	default:
	}
}

// Charge counts n more bytes (negative n: fewer) against the connection's
// budget, for memory a handler holds on the connection's behalf beyond
// its response — a parked long poll's request. Every charge must be
// undone with the opposite amount.
func (c *Conn) Charge(n int64) { c.addBuffered(n) }

// BufferedBytes is what the connection currently counts against its
// budget: queued output not yet written plus charges.
func (c *Conn) BufferedBytes() int64 { return c.buffered.Load() }

// PeakBufferedBytes is the largest BufferedBytes seen so far.
func (c *Conn) PeakBufferedBytes() int64 { return c.peak.Load() }

// hasRoom reports whether a request reserving r bytes may be dispatched.
func (c *Conn) hasRoom(r int64) bool {
	b, q, res := c.cfg.maxBytes, c.buffered.Load(), c.reserved.Load()
	return q+res+r <= b || (res == 0 && q <= b/2)
}

// waitForRoom blocks the read loop until a request reserving r bytes fits
// the budget. It reports false when the connection closed meanwhile.
func (c *Conn) waitForRoom(r int64) bool {
	if c.cfg.maxBytes <= 0 || c.hasRoom(r) {
		return true
	}
	c.cfg.limitLog.log(c.logger(), "remoting: connection over its byte budget; its requests are not read until it reads its responses",
		"buffered", c.buffered.Load(), "reserved", c.reserved.Load(), "budget", c.cfg.maxBytes)
	c.stalls.Add(1)
	for !c.hasRoom(r) {
		select {
		case <-c.room:
		case <-c.done:
			return false
		}
	}
	return true
}

// Stalls counts how often the read loop paused for the byte budget.
func (c *Conn) Stalls() int64 { return c.stalls.Load() }

// rateLog writes a warning at most once per limitLogEvery, with the
// number of occurrences it suppressed since the last line.
type rateLog struct {
	last       atomic.Int64 // unix nanos of the last line
	suppressed atomic.Int64
}

func (r *rateLog) log(l *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(limitLogEvery) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return
	}
	l.Warn(msg, append(args, "suppressed_since_last_line", r.suppressed.Swap(0))...)
}
