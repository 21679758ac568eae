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

// Long polling (facts §2.3, Java's PullRequestHoldService). A pull that
// finds nothing (19) with the SUSPEND bit is parked under topic@queueId
// instead of answered. It is re-executed once, without suspension, and
// answered when:
//   - a message for that queue is dispatched at or after the pull's offset
//     and its tag code passes the pull's filter (Dispatch, called by the
//     engine's dispatch goroutine right after the consume-queue entry is
//     written, so the re-execution finds the message);
//   - its hold time ends (a runtime timer per parked pull);
//   - the broker stops (run).
//
// A parked pull whose connection closes is dropped. Exactly one of these
// paths "takes" a parked pull: removal from the table under mu is the
// claim. Dispatch never blocks: it takes the matching pulls under mu and
// hands them to a new goroutine.

// maxHold caps the hold time below the Go client's 30 s pull timeout.
const maxHold = 25 * time.Second

type queueKey struct {
	topic   string
	queueID int32
}

type heldPull struct {
	key      queueKey // topic owned by the request, never aliased
	offset   int64
	filter   *tagFilter
	conn     *remoting.Conn
	req      *protocol.Command
	timer    *time.Timer
	stopConn func() bool
}

// PullHold owns the parked pulls. Safe for concurrent use.
type PullHold struct {
	log    *slog.Logger
	exec   func(conn *remoting.Conn, req *protocol.Command) // re-execute without suspension, reply
	parked atomic.Int64                                     // fast path for Dispatch

	mu       sync.Mutex
	queues   map[queueKey][]*heldPull
	closed   bool
	inflight sync.WaitGroup // re-executions started by a take
}

func newPullHold(log *slog.Logger, exec func(*remoting.Conn, *protocol.Command)) *PullHold {
	return &PullHold{log: log, exec: exec, queues: map[queueKey][]*heldPull{}}
}

// park holds a pull for hold. It returns false when the pull must be
// answered now instead (service stopped, no hold time). maxSeen is the
// queue's max offset the failed execution saw: if a message arrived since,
// the pull is woken at once (its dispatch may have run before the park).
func (p *PullHold) park(conn *remoting.Conn, req *protocol.Command, topic string, queueID int32, offset int64,
	filter *tagFilter, hold time.Duration, maxSeen int64, maxNow func() int64) bool {
	if hold <= 0 {
		return false
	}
	h := &heldPull{key: queueKey{topic, queueID}, offset: offset, filter: filter, conn: conn, req: req}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
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
		p.parked.Add(-1)
		h.timer.Stop()
		h.stopConn()
		return true
	}
	return false
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
// record's queue whose offset it reaches and whose filter its tag code
// passes. r aliases record memory and is not kept.
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
			if r.QueueOffset >= h.offset && h.filter.matchesArrival(r.TagsCode) {
				h.timer.Stop()
				h.stopConn()
				woken = append(woken, h)
			} else {
				kept = append(kept, h)
			}
		}
		if len(woken) > 0 {
			p.setLocked(key, kept)
			p.parked.Add(-int64(len(woken)))
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
			h.timer.Stop()
			h.stopConn()
			all = append(all, h)
		}
	}
	clear(p.queues)
	p.parked.Store(0)
	p.inflight.Add(len(all))
	p.mu.Unlock()
	if len(all) > 0 {
		p.log.Debug("broker: answering parked pulls at shutdown", "count", len(all))
	}
	p.runAll(all)
	p.inflight.Wait()
}
