package broker

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqd/mqd/engine"
	"github.com/mqd/mqd/internal/protocol"
	"github.com/mqd/mqd/internal/remoting"
)

// Long polling (Java's PullMessageProcessor, Java's PullRequestHoldService). A pull that
// finds nothing (19) with the SUSPEND bit is parked under topic@queueId
// instead of answered. It is re-executed once, without suspension, and
// answered when:
//   - a message for that queue is dispatched at or after the pull's offset
//     and passes the pull's filter (Dispatch, called by the
//     engine's dispatch goroutine right after the consume-queue entry is
//     written, so the re-execution finds the message);
//   - its hold time ends (a runtime timer per parked pull);
//   - the broker stops (run).
//
// A parked pull whose connection closes is dropped. Exactly one of these
// paths "takes" a parked pull: removal from the table under mu is the
// claim. Dispatch never blocks: it takes the matching pulls under mu and
// hands them to a new goroutine.
//
// Memory a parked pull holds is bounded (SECURITY.md, "Transport
// limits"): its body (a pull has none; a hostile one may carry megabytes)
// and remark are dropped before parking, what remains of the request is
// charged to its connection's byte budget until the pull is taken, and a
// connection may park at most maxParkedPullsPerConnection pulls; beyond
// that a pull is answered SYSTEM_BUSY at once (both clients retry later).

// maxHold caps the hold time below the Go client's 30 s pull timeout.
const maxHold = 25 * time.Second

// DefaultMaxParkedPullsPerConn is the default of
// maxParkedPullsPerConnection: a client pulls each queue it consumes
// once at a time, and 1024 queues of one broker per client instance is
// far beyond common use.
const DefaultMaxParkedPullsPerConn = 1024

// heldRequestOverhead stands for the Command, map and heldPull structures
// of a parked pull, beyond its strings.
const heldRequestOverhead = 512

type queueKey struct {
	topic   string
	queueID int32
}

type heldPull struct {
	key      queueKey // topic owned by the request, never aliased
	offset   int64
	filter   *msgFilter
	conn     *remoting.Conn
	req      *protocol.Command
	timer    *time.Timer
	stopConn func() bool
	charged  int64 // bytes charged to conn's budget while parked
}

// PullHold owns the parked pulls. Safe for concurrent use.
type PullHold struct {
	log    *slog.Logger
	exec   func(conn *remoting.Conn, req *protocol.Command) // re-execute without suspension, reply
	parked atomic.Int64                                     // fast path for Dispatch

	maxPerConn int          // parked pulls one connection may hold
	busy       atomic.Int64 // pulls refused for maxPerConn (log rate limit below)
	lastBusy   atomic.Int64 // unix nanos of the last refusal log line

	mu       sync.Mutex
	queues   map[queueKey][]*heldPull
	perConn  map[*remoting.Conn]int
	closed   bool
	inflight sync.WaitGroup // re-executions started by a take
}

func newPullHold(log *slog.Logger, exec func(*remoting.Conn, *protocol.Command)) *PullHold {
	return &PullHold{log: log, exec: exec, queues: map[queueKey][]*heldPull{},
		perConn: map[*remoting.Conn]int{}, maxPerConn: DefaultMaxParkedPullsPerConn}
}

// limitPerConn sets maxParkedPullsPerConnection (n <= 0: the default).
func (p *PullHold) limitPerConn(n int) {
	if n <= 0 {
		n = DefaultMaxParkedPullsPerConn
	}
	p.maxPerConn = n
}

// heldBytes is what a parked request holds once its body and remark are
// dropped: its ext fields and fixed structures.
func heldBytes(req *protocol.Command) int64 {
	n := int64(heldRequestOverhead + len(req.Language))
	for k, v := range req.ExtFields {
		n += int64(len(k) + len(v))
	}
	return n
}

// park holds a pull for hold. It returns false when the pull must be
// answered now instead (service stopped, no hold time). maxSeen is the
// queue's max offset the failed execution saw: if a message arrived since,
// the pull is woken at once (its dispatch may have run before the park).
func (p *PullHold) park(conn *remoting.Conn, req *protocol.Command, topic string, queueID int32, offset int64,
	filter *msgFilter, hold time.Duration, maxSeen int64, maxNow func() int64) bool {
	if hold <= 0 {
		return false
	}
	req.Body, req.BodyParts, req.Remark = nil, nil, "" // a pull needs none; do not hold them
	h := &heldPull{key: queueKey{topic, queueID}, offset: offset, filter: filter, conn: conn, req: req,
		charged: heldBytes(req)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	if p.perConn[conn] >= p.maxPerConn {
		p.mu.Unlock()
		p.refuse(conn, req)
		return true
	}
	p.perConn[conn]++
	conn.Charge(h.charged)
	p.queues[h.key] = append(p.queues[h.key], h)
	p.parked.Add(1)
	h.timer = time.AfterFunc(min(hold, maxHold), func() { p.wakeOne(h) })
	h.stopConn = context.AfterFunc(conn.Context(), func() { p.drop(h) })
	p.mu.Unlock()
	if maxNow() > maxSeen {
		p.wakeOne(h)
	}
	return true
}

// takeLocked removes h from the table; false if another path took it.
func (p *PullHold) takeLocked(h *heldPull) bool {
	list := p.queues[h.key]
	for i, x := range list {
		if x != h {
			continue
		}
		p.setLocked(h.key, append(list[:i:i], list[i+1:]...))
		p.releaseLocked(h)
		return true
	}
	return false
}

// releaseLocked undoes what parking h set up, once h left the table.
func (p *PullHold) releaseLocked(h *heldPull) {
	p.parked.Add(-1)
	h.timer.Stop()
	h.stopConn()
	h.conn.Charge(-h.charged)
	if n := p.perConn[h.conn] - 1; n > 0 {
		p.perConn[h.conn] = n
	} else {
		delete(p.perConn, h.conn)
	}
}

// refuse answers a pull its connection may not park (maxPerConn).
func (p *PullHold) refuse(conn *remoting.Conn, req *protocol.Command) {
	total := p.busy.Add(1)
	now, last := time.Now().UnixNano(), p.lastBusy.Load()
	if now-last >= int64(10*time.Second) && p.lastBusy.CompareAndSwap(last, now) {
		p.log.Warn("broker: too many parked pulls on one connection; answering SYSTEM_BUSY",
			"remote", conn.RemoteAddrString(), "limit", p.maxPerConn, "refused_total", total)
	}
	conn.Reply(protocol.NewResponse(req, protocol.ResponseSystemBusy,
		fmt.Sprintf("[OVERLOAD] more than %d pulls parked on this connection", p.maxPerConn)))
}

// setLocked stores a queue's list; key must not alias record memory.
func (p *PullHold) setLocked(key queueKey, list []*heldPull) {
	if len(list) == 0 {
		delete(p.queues, key)
		return
	}
	p.queues[key] = list
}

// wakeOne re-executes h if it is still parked (deadline, late arrival).
func (p *PullHold) wakeOne(h *heldPull) {
	p.mu.Lock()
	ok := p.takeLocked(h)
	if ok {
		p.inflight.Add(1)
	}
	p.mu.Unlock()
	if ok {
		p.run1(h)
	}
}

// drop forgets h without answering (its connection closed).
func (p *PullHold) drop(h *heldPull) {
	p.mu.Lock()
	p.takeLocked(h)
	p.mu.Unlock()
}

// run1 re-executes a parked pull. It runs outside remoting's handler
// (timer, dispatch or shutdown goroutine), so it recovers a panic itself:
// a bug there must cost one pull, not the broker.
func (p *PullHold) run1(h *heldPull) {
	defer p.inflight.Done()
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("broker: parked pull panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			h.conn.Reply(protocol.NewResponse(h.req, protocol.ResponseSystemError, fmt.Sprint("pull failed: ", r)))
		}
	}()
	p.exec(h.conn, h.req)
}

// Dispatch implements engine.Dispatcher: it wakes the pulls parked on the
// record's queue whose offset it reaches and whose filter it passes (tag
// code, or SQL92 on its properties). r aliases record memory and is not kept.
func (p *PullHold) Dispatch(r *engine.DispatchRequest) error {
	if p.parked.Load() == 0 {
		return nil
	}
	p.mu.Lock()
	list := p.queues[queueKey{r.Topic, r.QueueID}] // lookup only: the key aliases the record
	var woken []*heldPull
	if len(list) > 0 {
		key := list[0].key
		kept := list[:0:0]
		for _, h := range list {
			if r.QueueOffset >= h.offset && h.filter.matchesArrival(r) {
				p.releaseLocked(h)
				woken = append(woken, h)
			} else {
				kept = append(kept, h)
			}
		}
		if len(woken) > 0 {
			p.setLocked(key, kept)
			p.inflight.Add(len(woken))
		}
	}
	p.mu.Unlock()
	if len(woken) > 0 {
		go p.runAll(woken)
	}
	return nil
}

func (p *PullHold) runAll(hs []*heldPull) {
	for _, h := range hs {
		p.run1(h)
	}
}

// Len is the number of parked pulls.
func (p *PullHold) Len() int { return int(p.parked.Load()) }

// run waits for stop, then answers every parked pull (re-executed: most
// get 19) and waits for re-executions in progress, so the store can close.
func (p *PullHold) run(stop <-chan struct{}) {
	<-stop
	p.mu.Lock()
	p.closed = true
	var all []*heldPull
	for _, list := range p.queues {
		for _, h := range list {
			p.releaseLocked(h)
			all = append(all, h)
		}
	}
	clear(p.queues)
	p.inflight.Add(len(all))
	p.mu.Unlock()
	if len(all) > 0 {
		p.log.Debug("broker: answering parked pulls at shutdown", "count", len(all))
	}
	p.runAll(all)
	p.inflight.Wait()
}
