package remoting

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// deferredServer answers code 10 later, from another goroutine, through
// ReplyDeferred (at most max deferred at once; beyond that at once), once
// release is closed.
func deferredServer(t *testing.T, max int64) (*Server, chan struct{}, *sync.WaitGroup) {
	s, _ := startServer(t, ServerConfig{})
	release := make(chan struct{})
	var pending sync.WaitGroup
	s.HandleRecycled(protocol.SendMessage, func(_ context.Context, conn *Conn, req *protocol.Command) *protocol.Command {
		pending.Add(1) // before Defer: whoever sees Deferred() > 0 may Wait
		if !conn.Defer(max) {
			pending.Done()
			return protocol.NewResponse(req, protocol.ResponseSuccess, "now")
		}
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "later")
		go func() {
			defer pending.Done()
			<-release
			conn.ReplyDeferred(resp)
		}()
		return nil
	})
	return s, release, &pending
}

// Deferred replies reach their callers; past the connection's bound the
// handler answers at once.
func TestDeferredReplies(t *testing.T) {
	s, release, _ := deferredServer(t, 2)
	c := dial(t, s, ClientConfig{})
	type result struct {
		remark string
		err    error
	}
	results := make(chan result, 3)
	for range 3 {
		go func() {
			resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(protocol.SendMessage, nil, "m"))
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{remark: resp.Remark}
		}()
	}
	first := <-results // the one past the bound, answered at once
	if first.err != nil || first.remark != "now" {
		t.Fatalf("first answer %+v, want the one past the bound", first)
	}
	if n := s.Conns()[0].Deferred(); n != 2 {
		t.Fatalf("%d deferred, want 2", n)
	}
	close(release)
	for range 2 {
		if r := <-results; r.err != nil || r.remark != "later" {
			t.Fatalf("deferred answer %+v", r)
		}
	}
	waitUntil(t, func() bool { return s.Conns()[0].Deferred() == 0 })
}

// Shutdown waits for deferred replies as for running handlers, so a
// graceful stop answers every request it accepted.
func TestShutdownWaitsForDeferredReplies(t *testing.T) {
	s, release, pending := deferredServer(t, 10)
	c := dial(t, s, ClientConfig{})
	got := make(chan error, 1)
	go func() {
		resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(protocol.SendMessage, nil, "m"))
		if err == nil && resp.Remark != "later" {
			t.Errorf("answer %q", resp.Remark)
		}
		got <- err
	}()
	waitUntil(t, func() bool { return len(s.Conns()) == 1 && s.Conns()[0].Deferred() == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(ctxTimeout(t, 5*time.Second)) }()
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) with a reply deferred", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	pending.Wait()
	if err := <-got; err != nil {
		t.Fatalf("deferred call during shutdown: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
