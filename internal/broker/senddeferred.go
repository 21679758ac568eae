package broker

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/message"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Deferred sends (putOne) are bounded twice: maxDeferredSends a
// connection (remoting.Conn.Defer) and maxDeferredSendsTotal across the
// broker. Past either a send waits on its handler goroutine as before, and
// the connection's in-flight limit stops reading it. The connection's
// bound is eight times its handlers: a pipelining producer keeps
// thousands of sends in flight (the Java client allows 65535 asynchronous
// sends a producer, mqbench 4096 a connection). At 1024 most of those took
// a parked handler goroutine (bench/ha-pair.sh at the maximum rate: 9 vs
// 11 CPU-µs per message on a lone SYNC_FLUSH master, 10.5 vs 15 on a
// SYNC_MASTER). At 4096 a send ran on the read loop only below 3072
// (sendInline leaves room for the handlers), so the last quarter of
// mqbench's window still took handler goroutines: 6,000-24,000 a second
// were started at 250k msg/s, past the parked ones, and each grew its
// stack through the send path (runtime.newstack: 0.3 CPU-µs a message on
// a lone master, 0.5 on a SYNC_MASTER; BENCHMARKS.md, session 19). At
// 8192 they are gone, and four such connections still take only half of
// the broker's bound. Each deferred send holds about 400 bytes (its
// waiter, timer, put request and sendDone), about 600 on a SYNC_MASTER (a
// second waiter for the slave), and not its message: the engine forgets
// it once encoded (putRequest.Encode). That is 5 MB for a connection at
// the bound, 40 MB for the broker.
const (
	maxDeferredSends      = 8 * remoting.DefaultMaxInflight
	maxDeferredSendsTotal = 64 << 10
)

// putOne puts m. While the message is written (ASYNC_FLUSH) or becomes
// durable (SYNC_FLUSH) no goroutine waits (issue 14: a goroutine woken per
// send was a good part of the CPU): the handler returns nil and the
// commit log's flush loop (or, on a SYNC_MASTER, the slave's report)
// answers through sendDone. A put that completes at once (refused,
// WAIT=false, a SYNC_MASTER without a slave) is answered here,
// as is a oneway send (its handler still waits, so a oneway sender is
// held to the log's pace; the transport drops the answer). counted is
// the topic the send is counted under (before a retry's DLQ redirect).
func (b *Broker) putOne(req *protocol.Command, conn *remoting.Conn, m *message.Message, wait bool,
	t sendTarget, counted *topicEntry, began time.Time) *protocol.Command {
	var handle *engine.Topic // the engine checks it is m's topic's (a scheduled message's is not)
	if t.st != nil {
		handle = t.st.storeTopic(b.store)
	}
	if conn == nil || req.IsOneway() || !b.store.DefersPut(wait) || !b.deferSend(conn) {
		return b.sendResponse(req, b.store.PutTopicMessageWait(handle, m, wait), t.queueID, false)
	}
	d := sendDonePool.Get().(*sendDone)
	*d = sendDone{b: b, conn: conn, opaque: req.Opaque, serialize: req.SerializeType,
		counted: counted, queueID: t.queueID, bodyLen: len(req.Body), began: began}
	handedOff := false
	defer func() {
		if !handedOff { // completed now, or the put panicked
			b.undeferSend(conn)
			*d = sendDone{}
			sendDonePool.Put(d)
		}
	}()
	res, now := b.store.PutMessageAsync(handle, m, wait, d)
	if !now {
		handedOff = true
		return nil // d answers
	}
	return b.sendResponse(req, res, t.queueID, false)
}

// deferSend reserves a deferred answer on conn within both bounds, and
// counts the send as in progress until it is answered (admin_load.go).
func (b *Broker) deferSend(conn *remoting.Conn) bool {
	if b.deferred.Add(1) > maxDeferredSendsTotal {
		b.deferred.Add(-1)
		return false
	}
	if !conn.Defer(maxDeferredSends) {
		b.deferred.Add(-1)
		return false
	}
	b.stats.Send.InProgress.Add(1)
	return true
}

// undeferSend gives deferSend's reservation back without an answer.
func (b *Broker) undeferSend(conn *remoting.Conn) {
	b.stats.Send.InProgress.Add(-1)
	b.deferred.Add(-1)
	conn.EndDefer()
}

// sendDone answers a send whose put completes on the commit log's flush
// loop or, on a SYNC_MASTER, with its slave's report (engine.PutDone). It keeps what the response needs from the
// request, which is recycled when the handler returns.
type sendDone struct {
	b         *Broker
	conn      *remoting.Conn
	opaque    int32
	serialize protocol.SerializeType
	counted   *topicEntry
	queueID   int32
	bodyLen   int
	began     time.Time
}

var sendDonePool = sync.Pool{New: func() any { return new(sendDone) }}

// PutDone builds and queues the response. It runs on the commit log's
// flush loop, the goroutine reading a slave's reports, or an expiry
// timer's goroutine, where a panic would stop
// the process: one is turned into a SYSTEM_ERROR answer, as callHandler
// does for handlers.
func (d *sendDone) PutDone(res engine.PutResult) {
	b, conn, dd := d.b, d.conn, *d
	*d = sendDone{}
	sendDonePool.Put(d)
	req := protocol.Command{Opaque: dd.opaque, SerializeType: dd.serialize} // all NewResponse reads
	answered := false
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("send: panic answering a deferred send", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			if !answered {
				conn.ReplyDeferred(protocol.NewResponse(&req, protocol.ResponseSystemError, fmt.Sprint("panic: ", r)))
				b.stats.Send.InProgress.Add(-1)
				b.deferred.Add(-1)
			}
		}
	}()
	resp := b.sendResponse(&req, res, dd.queueID, false)
	b.countSend(dd.counted, dd.bodyLen, dd.began, resp)
	b.stats.Send.InProgress.Add(-1)
	b.deferred.Add(-1)
	answered = true
	conn.ReplyDeferred(resp)
}
