// Package remoting is mqd's TCP transport for the RocketMQ remoting
// protocol: a Server with a handler registry by request code, a pipelined
// Client, a Pool of clients keyed by address, and the Conn type both sides
// share. It imports only internal/protocol.
//
// # Goroutines and ownership
//
// Every Conn runs exactly two goroutines for its whole life:
//
//   - the read loop owns the socket's read side, the bufio.Reader and the
//     protocol.Decoder. It decodes one frame at a time; responses are
//     matched to pending calls by opaque right there (cheap), requests are
//     handed to a handler goroutine: on a server, a parked worker of the
//     server's pool or a new one (workers.go); on a client, a new one.
//     When MaxInflight handlers of that
//     connection are running, or its byte budget is used up (queued
//     output, handler reservations, charges: budget.go), the read loop
//     waits (TCP back-pressure), so one connection cannot flood the
//     process.
//   - the writer owns the socket's write side and the encode buffers. Other
//     goroutines only append *protocol.Command values to the connection's
//     queue (under a short mutex) and poke the writer; the writer swaps the
//     whole queue out, encodes the commands into one buffer (large bodies
//     and Command.BodyParts are added as separate segments, never copied)
//     and issues one writev (net.Buffers) for every 256 KiB encoded. A
//     burst of replies therefore costs a syscall or a few, not one a reply.
//
// Every handler runs on a goroutine of its own while it runs (a worker
// takes the next request only once its handler returned), so a slow
// handler never blocks the read loop or other requests of the same
// connection; responses may leave out of order (opaque matches them). The
// exception is a request a Mux.HandleInline predicate accepts: its handler
// runs on the read loop (no goroutine switch), so the predicate accepts
// only requests answered without waiting. A handler may return nil and
// answer later with Conn.Reply (long polling), or with ReplyDeferred after
// Conn.Defer (bounded, and waited for by Shutdown). A panicking handler produces a
// SYSTEM_ERROR response and a log line. Oneway requests (flag bit 1) get
// no reply.
//
// The pending-call table (opaque → call) of a Conn is guarded by its own
// mutex; whoever removes an entry completes that call, exactly once. When
// a connection dies every pending call fails at once with ErrConnClosed.
//
// A Server closes connections accepted beyond MaxConns at once.
//
// Lock order: Conn.pmu and Conn.wmu are never held together; Server.mu may
// be held while taking neither.
package remoting
