package remoting

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// goid is the running goroutine's id (tests only).
func goid() int {
	var b [64]byte
	f := bytes.Fields(b[:runtime.Stack(b[:], false)])
	id, _ := strconv.Atoi(string(f[1]))
	return id
}

// TestWorkersReuseAndStop: a request after another one finished runs on
// the same, parked, goroutine; concurrent requests each get one; at most
// maxIdleWorkers stay parked; Close makes the parked ones exit.
func TestWorkersReuseAndStop(t *testing.T) {
	s, _ := startServer(t, ServerConfig{MaxInflightPerConn: 2 * maxIdleWorkers})
	w := s.connCfg.workers
	const code = 77
	var mu sync.Mutex
	var ids []int
	gate := make(chan struct{})
	s.Handle(code, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		mu.Lock()
		ids = append(ids, goid())
		mu.Unlock()
		if req.ExtFields["wait"] != "" {
			<-gate
		}
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	})
	c := dial(t, s, ClientConfig{})
	invoke := func(ext map[string]string) {
		if _, err := c.Invoke(ctxTimeout(t, 10*time.Second), request(code, ext, "")); err != nil {
			t.Error(err)
		}
	}
	invoke(nil)
	waitFor(t, "a parked worker", 5*time.Second, func() bool { return w.idle.Load() == 1 })
	invoke(nil)
	mu.Lock()
	same := ids[0] == ids[1]
	mu.Unlock()
	if !same {
		t.Fatalf("second request ran on goroutine %d, not on the parked worker %d", ids[1], ids[0])
	}

	// More concurrent requests than may park: each runs at once (none
	// waits for another), and only maxIdleWorkers park afterwards.
	n := maxIdleWorkers + 40
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); invoke(map[string]string{"wait": "1"}) }()
	}
	waitFor(t, "every request running", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) == 2+n
	})
	close(gate)
	wg.Wait()
	waitFor(t, "workers parked", 5*time.Second, func() bool { return w.idle.Load() == maxIdleWorkers })

	s.Close()
	waitFor(t, "parked workers gone", 5*time.Second, func() bool { return w.idle.Load() == 0 })
}
