package remoting

import "github.com/mqd/mqd/internal/protocol"

// Deferred replies (issue 14: no goroutine waits per send). A handler that
// has started work which completes elsewhere (a send the commit log's
// flush loop will confirm) reserves a deferred reply with Defer, returns
// nil, and the completion answers with ReplyDeferred. Unlike a reply a
// handler defers on its own (Reply, long polling), these are bounded per
// connection and the server's Shutdown waits for them as for running
// handlers, so a graceful stop still answers every send it accepted.

// Defer reserves a deferred reply on c: at most max may be outstanding on
// the connection at once. It returns false, reserving nothing, when max
// are, or when the server is shutting down: the handler then answers the
// ordinary way. Every true must be followed by exactly one ReplyDeferred
// or EndDefer.
func (c *Conn) Defer(max int64) bool {
	if c.deferred.Add(1) > max {
		c.deferred.Add(-1)
		return false
	}
	if !c.cfg.tracker.add() {
		c.deferred.Add(-1)
		return false
	}
	return true
}

// EndDefer gives a reservation back without replying (the work completed
// before the handler returned, and the handler answers itself).
func (c *Conn) EndDefer() {
	c.deferred.Add(-1)
	c.cfg.tracker.done()
}

// ReplyDeferred answers a deferred request with resp, built with
// protocol.NewResponse from the request (opaque and serialize type), and
// ends the reservation. resp is recycled once written (as a
// Mux.HandleRecycled handler's response): the caller keeps no reference.
func (c *Conn) ReplyDeferred(resp *protocol.Command) {
	resp.Flag |= protocol.FlagResponse
	if resp.Language == "" {
		resp.Language = protocol.DefaultLanguage
	}
	if resp.Version == 0 {
		resp.Version = protocol.VersionV4_9_7
	}
	code := resp.Code // resp may be written and recycled before enqueueItem returns
	if err := c.enqueueItem(outItem{cmd: resp, recycle: true}); err != nil {
		c.logger().Debug("remoting: deferred response dropped", "code", code, "err", err)
	}
	c.EndDefer()
}

// Deferred is the number of deferred replies outstanding on c.
func (c *Conn) Deferred() int64 { return c.deferred.Load() }
