package remoting

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/protocol"
)

// Handler serves one request. It returns the response, or nil when it will
// answer later through conn.Reply (or when the request needs no answer).
// The response's opaque, response flag and serialize type are set from the
// request by the transport. ctx is cancelled when the connection closes.
type Handler func(ctx context.Context, conn *Conn, req *protocol.Command) *protocol.Command

// Mux maps request codes to handlers. Lookups are lock-free (copy on
// write); Handle may be called at any time.
type Mux struct {
	mu    sync.Mutex // serialises writers
	table atomic.Pointer[map[int16]muxEntry]
	def   atomic.Pointer[Handler]
	guard atomic.Pointer[Guard] // guard.go
}

// muxEntry is a code's handler and whether it was registered with
// HandleRecycled: one table entry, so a dispatch reads both from the same
// registration (a re-registration while a handler runs cannot make the
// connection recycle a request its handler may keep).
type muxEntry struct {
	h       Handler
	recycle bool
	inline  func(*Conn, *protocol.Command) bool // HandleInline
}

// NewMux returns a Mux whose default handler answers
// REQUEST_CODE_NOT_SUPPORTED, as a Java broker does.
func NewMux() *Mux {
	m := &Mux{}
	empty := map[int16]muxEntry{}
	m.table.Store(&empty)
	def := Handler(NotSupported)
	m.def.Store(&def)
	return m
}

// Handle registers h for code, replacing any previous handler.
func (m *Mux) Handle(code int16, h Handler) { m.store(code, muxEntry{h: h}) }

// HandleRecycled registers h for code like Handle, and promises that h
// (and whatever it calls) keeps no reference to the request Command, its
// ExtFields map or its Body bytes once it returns, and none to the
// response it returns: the connection recycles the request and reuses the
// body's buffer when h returns, and recycles the response once it is
// written (protocol.Command.Recycle). So the response must not carry the
// request's Body either. Strings read from the request may be kept,
// except a typed send header's Properties and anything cut from them
// (protocol.Command.SendHeader): like the Body, they alias a buffer reused
// once h returns, so h clones what it keeps. Only the hot request codes
// are worth it (issue 14).
func (m *Mux) HandleRecycled(code int16, h Handler) { m.store(code, muxEntry{h: h, recycle: true}) }

// HandleInline registers h like HandleRecycled, and runs it on the
// connection's read loop instead of a handler goroutine for every request
// inline accepts (issue 14: a goroutine switch per request). inline, called
// on the read loop, must accept only requests h answers without waiting
// for anything but locks: while h runs the connection is not read. It
// suits a handler that answers at once or defers its reply
// (Conn.Defer); the rest run on a handler goroutine as usual.
func (m *Mux) HandleInline(code int16, h Handler, inline func(*Conn, *protocol.Command) bool) {
	m.store(code, muxEntry{h: h, recycle: true, inline: inline})
}

func (m *Mux) store(code int16, e muxEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.table.Load()
	next := make(map[int16]muxEntry, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[code] = e
	m.table.Store(&next)
}

// recycles reports whether code is registered with HandleRecycled now
// (the read side's choice of a pooled body buffer; dispatch decides again
// from its own lookup).
func (m *Mux) recycles(code int16) bool {
	return (*m.table.Load())[code].recycle
}

// HandleDefault sets the handler for codes without their own handler.
func (m *Mux) HandleDefault(h Handler) { m.def.Store(&h) }

func (m *Mux) lookup(code int16) Handler {
	return m.dispatch(code).h
}

// dispatch returns what serves code: its entry with the handler guarded.
func (m *Mux) dispatch(code int16) muxEntry {
	if e, ok := (*m.table.Load())[code]; ok {
		e.h = m.guarded(e.h)
		return e
	}
	return muxEntry{h: m.guarded(*m.def.Load())}
}

// NotSupported answers REQUEST_CODE_NOT_SUPPORTED (3) with the Java remark
// " request type <code> not supported".
func NotSupported(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
	return protocol.NewResponse(req, protocol.ResponseRequestCodeNotSupported,
		" request type "+strconv.Itoa(int(req.Code))+" not supported")
}

// Handler returns what serves code: its handler (or the default) wrapped
// by the guard, exactly as a connection dispatches it. Benchmarks use it
// to run the request path without a socket.
func (s *Server) Handler(code int16) Handler { return s.mux.lookup(code) }

// HandleRecycled registers h for code on the server's mux (see
// Mux.HandleRecycled).
func (s *Server) HandleRecycled(code int16, h Handler) { s.mux.HandleRecycled(code, h) }

// HandleInline registers h for code on the server's mux (see
// Mux.HandleInline).
func (s *Server) HandleInline(code int16, h Handler, inline func(*Conn, *protocol.Command) bool) {
	s.mux.HandleInline(code, h, inline)
}
