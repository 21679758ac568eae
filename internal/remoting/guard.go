package remoting

import (
	"context"

	"github.com/mqd/mqd/internal/protocol"
)

// Guard runs before the handler of every request, unknown codes included,
// as RocketMQ's server RPC hooks do (the ACL check is one). A non-nil
// response answers the request and the handler does not run; for a oneway
// request nothing is sent.
type Guard func(ctx context.Context, conn *Conn, req *protocol.Command) *protocol.Command

// SetGuard installs g (nil removes it); requests dispatched afterwards pass
// through it.
func (m *Mux) SetGuard(g Guard) {
	if g == nil {
		m.guard.Store(nil)
		return
	}
	m.guard.Store(&g)
}

// SetGuard installs g on the server's mux (see Mux.SetGuard).
func (s *Server) SetGuard(g Guard) { s.mux.SetGuard(g) }

func (m *Mux) guarded(h Handler) Handler {
	gp := m.guard.Load()
	if gp == nil {
		return h
	}
	g := *gp
	return func(ctx context.Context, conn *Conn, req *protocol.Command) *protocol.Command {
		if resp := g(ctx, conn, req); resp != nil {
			return resp
		}
		return h(ctx, conn, req)
	}
}
