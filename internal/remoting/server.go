package remoting

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// Server defaults.
const (
	DefaultIdleTimeout  = 120 * time.Second // serverChannelMaxIdleTimeSeconds
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxInflight  = 1024
)

// ServerConfig configures a Server. Zero values take the defaults.
type ServerConfig struct {
	// Addr is the listen address, e.g. ":10911". Ignored when Listener is
	// set.
	Addr string
	// Listener, if set, is used instead of listening on Addr (tests wrap
	// it).
	Listener net.Listener
	// MaxFrame caps inbound frames, length field included (default
	// protocol.DefaultMaxFrame, 16 MiB).
	MaxFrame int
	// IdleTimeout closes a connection after this long without inbound
	// bytes (default 120 s; negative disables).
	IdleTimeout time.Duration
	// WriteTimeout bounds one writev (default 30 s; negative disables); a
	// peer that stops reading is disconnected.
	WriteTimeout time.Duration
	// MaxInflightPerConn bounds concurrently running handlers of one
	// connection; at the limit the connection's read loop waits (default
	// 1024). Deferred replies (handler returned nil) do not count; those
	// reserved with Conn.Defer have their own per-connection bound.
	MaxInflightPerConn int
	// MaxConns caps open connections; a connection accepted beyond it is
	// closed at once, with a rate-limited log line (default
	// DefaultMaxConns; negative: no limit).
	MaxConns int
	// MaxConnBytes is the per-connection byte budget (budget.go): queued
	// output, reservations and charges above it stop the connection's
	// read loop until its peer reads (default DefaultMaxConnBytes;
	// negative: no budget).
	MaxConnBytes int64
	// ResponseReserve maps request codes whose responses may be large to
	// the bytes a running handler of that code reserves in its
	// connection's budget (absent codes reserve nothing).
	ResponseReserve map[int16]int64
	// MaxInboundBytes bounds the bytes of inbound frames being read or
	// handled across all connections (inbound.go): a read loop whose next
	// chunk does not fit waits (default DefaultMaxInboundBytes; negative:
	// no budget).
	MaxInboundBytes int64
	// MaxRequestBody maps request codes to the largest body their handler
	// uses; a larger body is read and dropped, never held (absent codes:
	// MaxFrame).
	MaxRequestBody map[int16]int32
	// Logger receives connection events (default slog.Default()).
	Logger *slog.Logger
	// TypedSendHeaders decodes the JSON header of send requests (codes
	// 10/310/320/324/325) into a typed header where it can
	// (protocol.DecodeRequestFrame): their ExtFields are then nil, and
	// handlers read them with SendMessageRequestHeader.DecodeRequest or
	// Command.Fields. Only the broker, whose send handlers do, sets it.
	TypedSendHeaders bool
}

// Server accepts remoting connections and dispatches requests to handlers
// registered by request code.
type Server struct {
	mux     *Mux
	cfg     ServerConfig
	connCfg connConfig
	tracker tracker

	refused  atomic.Int64 // connections closed at accept (MaxConns)
	limitLog rateLog      // MaxConns log line

	mu        sync.Mutex // guards the fields below
	ln        net.Listener
	conns     map[*Conn]struct{}
	onClose   []func(*Conn)
	onConnect []func(*Conn)
	closing   bool
	acceptEnd chan struct{}
}

// NewServer returns a server with the given config; register handlers,
// then call Start.
func NewServer(cfg ServerConfig) *Server {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = protocol.DefaultMaxFrame
	}
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.MaxInflightPerConn <= 0 {
		cfg.MaxInflightPerConn = DefaultMaxInflight
	}
	cfg.MaxConns = int(orDefaultN(int64(cfg.MaxConns), DefaultMaxConns))
	cfg.MaxConnBytes = orDefaultN(cfg.MaxConnBytes, DefaultMaxConnBytes)
	cfg.MaxInboundBytes = orDefaultN(cfg.MaxInboundBytes, DefaultMaxInboundBytes)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{mux: NewMux(), cfg: cfg, conns: map[*Conn]struct{}{}}
	s.connCfg = connConfig{
		mux: s.mux, logger: cfg.Logger, maxFrame: cfg.MaxFrame,
		idleTimeout: cfg.IdleTimeout, writeTimeout: cfg.WriteTimeout,
		maxInflight: cfg.MaxInflightPerConn, onClose: s.connClosed, tracker: &s.tracker,
		maxBytes: cfg.MaxConnBytes, reserve: cfg.ResponseReserve, limitLog: &rateLog{},
		inbound: newInboundBudget(cfg.MaxInboundBytes), maxBody: cfg.MaxRequestBody, bodyLog: &rateLog{},
		typedSend: cfg.TypedSendHeaders, workers: newWorkers(),
	}
	return s
}

// orDefaultN maps 0 to def and negative values to 0 (no limit).
func orDefaultN(n, def int64) int64 {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

// orDefault maps 0 to def and negative values to 0 (disabled).
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Handle registers h for a request code.
func (s *Server) Handle(code int16, h Handler) { s.mux.Handle(code, h) }

// HandleDefault replaces the handler for unknown codes (by default it
// answers REQUEST_CODE_NOT_SUPPORTED).
func (s *Server) HandleDefault(h Handler) { s.mux.HandleDefault(h) }

// OnConnect registers f to run (on the accept goroutine) for every new
// connection before its first request is read.
func (s *Server) OnConnect(f func(*Conn)) {
	s.mu.Lock()
	s.onConnect = append(s.onConnect, f)
	s.mu.Unlock()
}

// OnClose registers f to run once for every connection that closes, after
// its pending calls failed. f runs on the goroutine that noticed the close
// and must not block for long.
func (s *Server) OnClose(f func(*Conn)) {
	s.mu.Lock()
	s.onClose = append(s.onClose, f)
	s.mu.Unlock()
}

// Start listens (unless a Listener was given) and accepts connections on
// a new goroutine.
func (s *Server) Start() error {
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.closing || s.ln != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("remoting: server already started or closed")
	}
	s.ln, s.acceptEnd = ln, make(chan struct{})
	s.mu.Unlock()
	go s.acceptLoop(ln)
	return nil
}

// Addr is the listening address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// ConnCount is the number of open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer close(s.acceptEnd)
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosing() {
				return
			}
			s.cfg.Logger.Warn("remoting: accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.serveConn(nc)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if n := len(s.conns); s.cfg.MaxConns > 0 && n >= s.cfg.MaxConns {
		s.mu.Unlock()
		s.refuse(nc)
		return
	}
	c := newConn(nc, &s.connCfg)
	s.conns[c] = struct{}{}
	hooks := s.onConnect
	s.mu.Unlock()
	for _, f := range hooks {
		f(c)
	}
	c.logger().Debug("remoting: connection accepted")
	c.start()
}

// refuse closes a connection accepted beyond MaxConns.
func (s *Server) refuse(nc net.Conn) {
	total := s.refused.Add(1) // counted and logged before the peer can see the close
	s.limitLog.log(s.cfg.Logger, "remoting: connection limit reached, closing new connection",
		"remote", nc.RemoteAddr().String(), "limit", s.cfg.MaxConns, "refused_total", total)
	nc.Close()
}

// RefusedConns is the number of connections closed at accept because
// MaxConns connections were open.
func (s *Server) RefusedConns() int64 { return s.refused.Load() }

// Conns returns the open connections (tests, diagnostics).
func (s *Server) Conns() []*Conn { return s.snapshotConns() }

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) connClosed(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	hooks := s.onClose
	s.mu.Unlock()
	for _, f := range hooks {
		f(c)
	}
}

// stopAccepting closes the listener and waits for the accept loop; no
// connection is added afterwards.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	s.closing = true
	ln, end := s.ln, s.acceptEnd
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
		<-end
	}
}

func (s *Server) snapshotConns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Shutdown stops accepting, answers new requests with
// SERVICE_NOT_AVAILABLE, waits for running handlers, flushes their
// responses and closes every connection. If ctx ends first the remaining
// connections are closed at once and ctx.Err() is returned. Replies
// reserved with Conn.Defer are waited for like running handlers; other
// deferred replies (long polls) still outstanding are not.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	defer s.connCfg.workers.stop()
	err := s.tracker.closeAndWait(ctx)
	conns := s.snapshotConns()
	if err == nil {
		for _, c := range conns {
			c.closeAfterFlush()
		}
		err = waitClosed(ctx, conns)
	}
	for _, c := range conns {
		c.closeWith(ErrServerClosed)
	}
	return err
}

// Close closes the listener and every connection immediately.
func (s *Server) Close() error {
	s.stopAccepting()
	s.connCfg.workers.stop()
	for _, c := range s.snapshotConns() {
		c.closeWith(ErrServerClosed)
	}
	return nil
}

func waitClosed(ctx context.Context, conns []*Conn) error {
	for _, c := range conns {
		select {
		case <-c.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
