package remoting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// Errors reported by connections.
var (
	// ErrConnClosed is returned (wrapped with the cause) by calls on, and
	// pending calls of, a connection that is closed.
	ErrConnClosed = errors.New("remoting: connection closed")
	// ErrServerClosed is the close cause of connections shut down by the
	// server.
	ErrServerClosed = errors.New("remoting: server closed")
)

// connConfig is shared by all connections of one Server or Client.
type connConfig struct {
	mux          *Mux
	logger       *slog.Logger
	maxFrame     int
	idleTimeout  time.Duration // <= 0: never
	writeTimeout time.Duration // <= 0: never
	maxInflight  int
	onClose      func(*Conn)
	tracker      *tracker // in-flight handlers (server shutdown)
	maxBytes     int64    // per-connection byte budget (budget.go); <= 0: none
	reserve      map[int16]int64
	limitLog     *rateLog
	inbound      *inboundBudget  // shared by a server's connections (inbound.go); nil: none
	maxBody      map[int16]int32 // largest request body kept per code (inbound.go)
	bodyLog      *rateLog
	typedSend    bool     // ServerConfig.TypedSendHeaders
	workers      *workers // a server's handler goroutines (workers.go); nil: one per request
}

var connIDs atomic.Uint64

// Conn is one remoting connection, server or client side. All methods are
// safe for concurrent use.
type Conn struct {
	cfg    *connConfig
	nc     net.Conn
	id     uint64
	remote string
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{} // in-flight handler slots

	wmu     sync.Mutex // guards queue, wclosed, drain
	queue   []outItem
	wclosed bool
	drain   bool          // close once the queue is flushed
	wake    chan struct{} // cap 1: queue became non-empty

	buffered atomic.Int64  // queued output + charges (budget.go)
	reserved atomic.Int64  // reservations of running handlers
	peak     atomic.Int64  // largest buffered seen
	stalls   atomic.Int64  // read-loop pauses for the budget
	room     chan struct{} // cap 1: buffered or reserved dropped

	pmu     sync.Mutex // guards pending, pclosed
	pending map[int32]*call
	pclosed bool

	deferred atomic.Int64 // deferred replies outstanding (deferred.go)

	value     atomic.Pointer[any]
	closeOnce sync.Once
	closeErr  error // written once before done is closed
	done      chan struct{}
}

func newConn(nc net.Conn, cfg *connConfig) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		cfg:     cfg,
		nc:      nc,
		id:      connIDs.Add(1),
		remote:  nc.RemoteAddr().String(),
		ctx:     ctx,
		cancel:  cancel,
		sem:     make(chan struct{}, cfg.maxInflight),
		wake:    make(chan struct{}, 1),
		room:    make(chan struct{}, 1),
		pending: make(map[int32]*call),
		done:    make(chan struct{}),
	}
}

// start launches the read loop and the writer.
func (c *Conn) start() {
	go c.writeLoop()
	go c.readLoop()
}

// ID is a process-unique connection number (for logs and maps).
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the peer address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// RemoteAddrString is RemoteAddr().String(), computed once.
func (c *Conn) RemoteAddrString() string { return c.remote }

// LocalAddr is the local address of the socket.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Value returns what SetValue stored (nil if nothing). Handlers use it for
// per-connection state such as the client id.
func (c *Conn) Value() any {
	if p := c.value.Load(); p != nil {
		return *p
	}
	return nil
}

// SetValue stores v in the connection's value slot.
func (c *Conn) SetValue(v any) { c.value.Store(&v) }

// Context is cancelled when the connection closes.
func (c *Conn) Context() context.Context { return c.ctx }

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Closed reports whether the connection has closed.
func (c *Conn) Closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Err returns why the connection closed (nil while open).
func (c *Conn) Err() error {
	if !c.Closed() {
		return nil
	}
	return c.closeErr
}

// Close closes the connection immediately; queued writes are dropped and
// pending calls fail.
func (c *Conn) Close() error {
	c.closeWith(errors.New("closed locally"))
	return nil
}

func (c *Conn) logger() *slog.Logger {
	return c.cfg.logger.With("conn", c.id, "remote", c.remote)
}

// closeWith closes everything once: socket, context, queue, pending calls,
// then runs the onClose hook.
func (c *Conn) closeWith(cause error) {
	c.closeOnce.Do(func() {
		c.closeErr = cause
		c.wmu.Lock()
		c.wclosed = true
		queued := c.queue
		c.queue = nil
		c.wmu.Unlock()
		close(c.done)
		c.cancel()
		c.nc.Close()
		err := fmt.Errorf("%w: %v", ErrConnClosed, cause)
		var dropped int64
		for _, it := range queued {
			dropped += it.size
			if it.done != nil {
				it.done(err)
			}
		}
		c.addBuffered(-dropped)
		c.failPending(err)
		if c.cfg.onClose != nil {
			c.cfg.onClose(c)
		}
	})
}

// readLoop decodes frames until the connection fails. It owns the read
// side of the socket.
func (c *Conn) readLoop() {
	fr := newFrameReader(c)
	defer fr.r.close()
	for {
		cmd, held, body, err := fr.read()
		if err != nil {
			c.readFailed(err)
			return
		}
		if cmd.IsResponse() {
			c.complete(cmd)
			c.cfg.inbound.release(held)
			continue
		}
		if !c.dispatch(cmd, held, body) {
			return
		}
	}
}

// extendReadDeadline pushes the idle deadline forward, at most every
// idle/8 so a busy connection does not reset a timer per read; the read
// loop's reader calls it before each read syscall (reader.go).
func (c *Conn) extendReadDeadline(last time.Time) time.Time {
	idle := c.cfg.idleTimeout
	if idle <= 0 {
		return last
	}
	now := time.Now()
	if now.Sub(last) < idle/8 {
		return last
	}
	c.nc.SetReadDeadline(now.Add(idle))
	return now
}

func (c *Conn) readFailed(err error) {
	log := c.logger()
	var fe *protocol.FrameError
	switch {
	case errors.As(err, &fe):
		log.Warn("remoting: bad frame, closing connection", "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Info("remoting: idle timeout, closing connection", "idle", c.cfg.idleTimeout)
		err = fmt.Errorf("idle for %v", c.cfg.idleTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		log.Debug("remoting: connection closed by peer", "err", err)
	default:
		log.Info("remoting: read failed, closing connection", "err", err)
	}
	c.closeWith(err)
}

// dispatch runs req's handler, on a handler goroutine or, for a request a
// Mux.HandleInline predicate accepts, on the read loop itself, after
// waiting for a free slot and then for room in the connection's byte
// budget (checked with the slot held, so no handler finishing meanwhile
// is missed). It reports
// false when the connection closed meanwhile. held is what req holds in
// the inbound budget, released once its handler returns.
func (c *Conn) dispatch(req *protocol.Command, held int64, body *bodyBuf) bool {
	select {
	case c.sem <- struct{}{}:
	case <-c.done:
		c.cfg.inbound.release(held)
		return false
	}
	// A code that reserves for its response also reserves the request's
	// own bytes: a handler that defers its reply (a parked pull) charges
	// what it keeps of them only once it runs, and requests dispatched
	// before that must not all pass on reservations alone.
	r := c.cfg.reserve[req.Code]
	if r > 0 {
		r += held
	}
	if !c.waitForRoom(r) {
		<-c.sem
		c.cfg.inbound.release(held)
		return false
	}
	if !c.cfg.tracker.add() {
		<-c.sem
		c.cfg.inbound.release(held)
		c.rejectDraining(req)
		return true
	}
	c.reserved.Add(r)
	e := c.cfg.mux.dispatch(req.Code)
	switch w := c.cfg.workers; {
	case e.inline != nil && c.inline(e.inline, req):
		c.runHandler(e.h, e.recycle, req, r, held, body) // Mux.HandleInline
	case w != nil:
		w.run(task{c: c, h: e.h, recycle: e.recycle, req: req, r: r, held: held, body: body})
	default:
		go c.runHandler(e.h, e.recycle, req, r, held, body)
	}
	return true
}

// inline asks a Mux.HandleInline predicate whether req runs on the read
// loop; a panic in it means no (the request then runs on a handler
// goroutine, where callHandler answers a panic of the handler).
func (c *Conn) inline(pred func(*Conn, *protocol.Command) bool, req *protocol.Command) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.logger().Error("remoting: inline predicate panic", "code", req.Code, "panic", fmt.Sprint(r))
			ok = false
		}
	}()
	return pred(c, req)
}

// rejectDraining answers requests that arrive while the server shuts down.
func (c *Conn) rejectDraining(req *protocol.Command) {
	if req.IsOneway() {
		return
	}
	resp := protocol.NewResponse(req, protocol.ResponseServiceNotAvailable, "server is shutting down")
	c.enqueue(resp, nil)
}

// runHandler runs h and queues its response; the reservation r is
// released once the response is queued (and counted) or the handler
// deferred its reply; the request's inbound bytes held once h returns.
// recycle is the dispatch-time registration of h (HandleRecycled): only
// then are the request and its pooled body reused.
func (c *Conn) runHandler(h Handler, recycle bool, req *protocol.Command, r, held int64, body *bodyBuf) {
	defer func() {
		c.cfg.inbound.release(held)
		if r != 0 {
			c.reserved.Add(-r)
			c.pokeRoom()
		}
		<-c.sem
		c.cfg.tracker.done()
	}()
	resp := c.callHandler(h, req)
	if resp == nil || req.IsOneway() {
		if recycle {
			req.Recycle()
			putBody(body)
		}
		return
	}
	prepareResponse(req, resp)
	code := req.Code
	if recycle && resp != req {
		req.Recycle()
		putBody(body) // a response never carries a recycled request's body
	}
	if err := c.enqueueItem(outItem{cmd: resp, recycle: recycle}); err != nil {
		c.logger().Debug("remoting: response dropped", "code", code, "err", err)
	}
}

// callHandler runs h, turning a panic into a SYSTEM_ERROR response.
func (c *Conn) callHandler(h Handler, req *protocol.Command) (resp *protocol.Command) {
	defer func() {
		if r := recover(); r != nil {
			c.logger().Error("remoting: handler panic", "code", req.Code,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp = protocol.NewResponse(req, protocol.ResponseSystemError, fmt.Sprint("handler panic: ", r))
		}
	}()
	return h(c.ctx, c, req)
}

// prepareResponse makes resp answer req whatever the handler filled in.
func prepareResponse(req, resp *protocol.Command) {
	resp.Opaque = req.Opaque
	resp.Flag |= protocol.FlagResponse
	resp.SerializeType = req.SerializeType
	if resp.Language == "" {
		resp.Language = protocol.DefaultLanguage
	}
	if resp.Version == 0 {
		resp.Version = protocol.VersionV4_9_7
	}
}

// tracker counts in-flight handlers so a server can wait for them. After
// close, add refuses new work. A nil tracker tracks nothing.
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{} // closed when n drops to 0 after close
}

func (t *tracker) add() bool {
	if t == nil {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) done() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.n--
	if t.n == 0 && t.closed && t.zero != nil {
		close(t.zero)
		t.zero = nil
	}
	t.mu.Unlock()
}

// closeAndWait stops new work and waits until in-flight work is done.
func (t *tracker) closeAndWait(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.zero == nil {
		t.zero = make(chan struct{})
	}
	zero := t.zero
	t.mu.Unlock()
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
