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
	table atomic.Pointer[map[int16]Handler]
	def   atomic.Pointer[Handler]
}

// NewMux returns a Mux whose default handler answers
// REQUEST_CODE_NOT_SUPPORTED, as a Java broker does.
func NewMux() *Mux {
	m := &Mux{}
	empty := map[int16]Handler{}
	m.table.Store(&empty)
	def := Handler(NotSupported)
	m.def.Store(&def)
	return m
}

// Handle registers h for code, replacing any previous handler.
func (m *Mux) Handle(code int16, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.table.Load()
	next := make(map[int16]Handler, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[code] = h
	m.table.Store(&next)
}

// HandleDefault sets the handler for codes without their own handler.
func (m *Mux) HandleDefault(h Handler) { m.def.Store(&h) }

func (m *Mux) lookup(code int16) Handler {
	if h, ok := (*m.table.Load())[code]; ok {
		return h
	}
	return *m.def.Load()
}

// NotSupported answers REQUEST_CODE_NOT_SUPPORTED (3) with the Java remark
// " request type <code> not supported".
func NotSupported(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
	return protocol.NewResponse(req, protocol.ResponseRequestCodeNotSupported,
		" request type "+strconv.Itoa(int(req.Code))+" not supported")
}
