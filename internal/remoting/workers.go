package remoting

import (
	"sync"
	"sync/atomic"

	"github.com/mqd/mqd/internal/protocol"
)

// workers runs a server's handlers on goroutines that outlive one request
// (issue 14: CPU per message). A goroutine per request paid its creation,
// its exit and, on the send path, two stack growths (2 -> 4 -> 8 KiB: a
// SYNC send's call chain runs from the handler down to the flush wait),
// about 7% of the broker's CPU at 50k msg/s. A worker keeps its grown
// stack; when it has finished a request it parks for the next, unless
// maxIdleWorkers already wait. A request for which no worker waits starts
// a new one, so handlers never queue behind each other: concurrency stays
// bounded by what bounded it before (each connection's in-flight limit).
type workers struct {
	tasks chan task     // unbuffered: a send succeeds only into a parked worker
	done  chan struct{} // closed by stop: parked workers exit
	idle  atomic.Int32  // workers parked or about to park
	once  sync.Once
}

// maxIdleWorkers bounds the parked workers (each holds its stack, a few
// KiB, while it waits).
const maxIdleWorkers = 256

// task is one dispatched request (Conn.runHandler's arguments).
type task struct {
	c       *Conn
	h       Handler
	recycle bool
	req     *protocol.Command
	r, held int64
	body    *bodyBuf
}

func newWorkers() *workers {
	return &workers{tasks: make(chan task), done: make(chan struct{})}
}

// run hands t to a parked worker, or starts one.
func (w *workers) run(t task) {
	select {
	case w.tasks <- t:
	default:
		go w.loop(t)
	}
}

// loop runs t, then parks for further tasks while the pool has room.
func (w *workers) loop(t task) {
	for {
		t.c.runHandler(t.h, t.recycle, t.req, t.r, t.held, t.body)
		t = task{} // drop references while parked
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		select {
		case t = <-w.tasks:
			w.idle.Add(-1)
		case <-w.done:
			w.idle.Add(-1)
			return
		}
	}
}

// stop makes the parked workers exit; running ones exit when done. Tasks
// dispatched afterwards still run, each on a goroutine of its own.
func (w *workers) stop() { w.once.Do(func() { close(w.done) }) }
