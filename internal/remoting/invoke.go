package remoting

import (
	"context"
	"sync/atomic"

	"github.com/mqd/mqd/internal/protocol"
)

// opaques is the process-wide request id counter (like the Java and Go
// clients); uniqueness among a connection's pending calls is checked.
var opaques atomic.Int32

// call is one request waiting for its response. Whoever removes it from
// the pending table completes it, exactly once.
type call struct {
	done chan struct{}                  // sync calls: closed on completion
	cb   func(*protocol.Command, error) // async calls
	resp *protocol.Command
	err  error
	stop func() bool // stops the async context watcher
}

func (cl *call) finish(resp *protocol.Command, err error) {
	if cl.cb != nil {
		go cl.cb(resp, err)
		return
	}
	cl.resp, cl.err = resp, err
	close(cl.done)
}

// register assigns cmd a fresh opaque and records cl under it.
func (c *Conn) register(cmd *protocol.Command, cl *call) (int32, error) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.pclosed {
		return 0, c.closedErr()
	}
	op := opaques.Add(1)
	for c.pending[op] != nil {
		op = opaques.Add(1)
	}
	cmd.Opaque = op
	cmd.Flag &^= protocol.FlagResponse | protocol.FlagOneway
	c.pending[op] = cl
	return op, nil
}

// take removes and returns the call registered under op (nil if none).
// hasPending reports whether a call waits for the response op.
func (c *Conn) hasPending(op int32) bool {
	c.pmu.Lock()
	_, ok := c.pending[op]
	c.pmu.Unlock()
	return ok
}

func (c *Conn) take(op int32) *call {
	var stop func() bool
	c.pmu.Lock()
	cl := c.pending[op]
	if cl != nil {
		delete(c.pending, op)
		stop = cl.stop
	}
	c.pmu.Unlock()
	if stop != nil {
		stop()
	}
	return cl
}

// complete delivers a response read by the read loop.
func (c *Conn) complete(resp *protocol.Command) {
	if cl := c.take(resp.Opaque); cl != nil {
		cl.finish(resp, nil)
		return
	}
	c.logger().Debug("remoting: response without pending call", "opaque", resp.Opaque, "code", resp.Code)
}

// failPending fails every pending call; later registrations fail at once.
func (c *Conn) failPending(err error) {
	c.pmu.Lock()
	calls := c.pending
	c.pending = nil
	c.pclosed = true
	c.pmu.Unlock()
	for _, cl := range calls {
		if cl.stop != nil {
			cl.stop()
		}
		cl.finish(nil, err)
	}
}

func (c *Conn) closedErr() error {
	if err := c.Err(); err != nil {
		return &closedError{cause: err}
	}
	return ErrConnClosed
}

type closedError struct{ cause error }

func (e *closedError) Error() string { return ErrConnClosed.Error() + ": " + e.cause.Error() }
func (e *closedError) Unwrap() error { return ErrConnClosed }

// Invoke sends a request and waits for its response, or for ctx to end, or
// for the connection to close. Any number of calls may be in flight on one
// connection. cmd's Opaque and Flag are overwritten; cmd must not be
// modified after the call.
func (c *Conn) Invoke(ctx context.Context, cmd *protocol.Command) (*protocol.Command, error) {
	cl := &call{done: make(chan struct{})}
	op, err := c.register(cmd, cl)
	if err != nil {
		return nil, err
	}
	if err := c.enqueue(cmd, nil); err != nil {
		if c.take(op) != nil {
			return nil, c.closedErr()
		}
	}
	select {
	case <-cl.done:
		return cl.resp, cl.err
	case <-ctx.Done():
		if c.take(op) != nil {
			return nil, ctx.Err()
		}
		<-cl.done // completed concurrently; honour the result
		return cl.resp, cl.err
	}
}

// InvokeAsync sends a request and calls cb, on a new goroutine, with the
// response or the error (ctx ended, connection closed). cb is called
// exactly once, also when InvokeAsync itself fails.
func (c *Conn) InvokeAsync(ctx context.Context, cmd *protocol.Command, cb func(*protocol.Command, error)) {
	cl := &call{cb: cb}
	op, err := c.register(cmd, cl)
	if err != nil {
		go cb(nil, err)
		return
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			if c.take(op) != nil {
				cb(nil, ctx.Err())
			}
		})
		c.pmu.Lock()
		if c.pending[op] == cl {
			cl.stop = stop
			stop = nil
		}
		c.pmu.Unlock()
		if stop != nil {
			stop()
		}
	}
	if err := c.enqueue(cmd, nil); err != nil {
		if c.take(op) != nil {
			go cb(nil, c.closedErr())
		}
	}
}

// InvokeOneway sends a request with the oneway flag set; no response is
// expected (a Java or mqd peer sends none).
func (c *Conn) InvokeOneway(cmd *protocol.Command) error {
	cmd.Opaque = opaques.Add(1)
	cmd.Flag = (cmd.Flag &^ protocol.FlagResponse) | protocol.FlagOneway
	if err := c.enqueue(cmd, nil); err != nil {
		return c.closedErr()
	}
	return nil
}

// Reply sends a response built with protocol.NewResponse (opaque and
// serialize type copied from the request) — used by handlers that returned
// nil, e.g. long polling.
func (c *Conn) Reply(resp *protocol.Command) error {
	return c.ReplyThen(resp, nil)
}

// ReplyThen is Reply with a callback run once the bytes were handed to the
// socket (nil error) or dropped. Use it to release buffers referenced by
// resp.Body or resp.BodyParts (e.g. commit-log segments).
func (c *Conn) ReplyThen(resp *protocol.Command, done func(error)) error {
	resp.Flag |= protocol.FlagResponse
	if resp.Language == "" {
		resp.Language = protocol.DefaultLanguage
	}
	if err := c.enqueue(resp, done); err != nil {
		if done != nil {
			done(err)
		}
		return c.closedErr()
	}
	return nil
}
