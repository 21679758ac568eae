package protocol

import "sync"

// Command recycling (issue 14: 0 allocations per request on the send
// path). Decoders and NewResponse take Commands, and the ext writers and
// decoders take maps, from pools; whoever solely owns a Command when it is
// done with it may hand it back with Recycle. A Command that is never
// recycled is simply collected, so only the code paths that know the whole
// life of a Command (the remoting layer, for handlers registered as not
// keeping their request) recycle.

var (
	commandPool = sync.Pool{New: func() any { return new(Command) }}
	extMapPool  sync.Pool // map[string]string, empty
)

// recycleMaxExt bounds the maps kept: a map that once held more entries
// (a hostile header with thousands of fields) is left to the collector so
// the pool never pins its table.
const recycleMaxExt = 32

// newCommand returns a zero Command.
func newCommand() *Command { return commandPool.Get().(*Command) }

// newExtMap returns an empty map for at least n ext fields.
func newExtMap(n int) map[string]string {
	if m, ok := extMapPool.Get().(map[string]string); ok {
		return m
	}
	return make(map[string]string, n)
}

// recycleMaxProps bounds the properties buffers kept for reuse.
const recycleMaxProps = 4 << 10

// propsBuf is a typed send header's properties buffer (Command.props).
type propsBuf struct{ b []byte }

var propsPool = sync.Pool{New: func() any { return new(propsBuf) }}

// Recycle hands c and its ExtFields map back for reuse. The caller must be
// the only one referring to c, and nothing may use c or its ExtFields map
// afterwards. Strings read from c stay valid, except the Properties of a
// typed send header (SendHeader, DecodeRequest, and the maps Fields and
// Ext build from it): they alias a pooled buffer that Recycle hands back
// for the next typed decode (Command.props).
// Recycle does not touch Body or BodyParts, but the transport may reuse a
// request's body buffer once a HandleRecycled handler returned
// (internal/remoting's Mux).
func (c *Command) Recycle() {
	if m := c.ExtFields; m != nil && len(m) <= recycleMaxExt {
		clear(m)
		extMapPool.Put(m)
	}
	if p := c.props; p != nil && cap(p.b) <= recycleMaxProps {
		propsPool.Put(p)
	}
	*c = Command{}
	commandPool.Put(c)
}
