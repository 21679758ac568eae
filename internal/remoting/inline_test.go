package remoting

import (
	"context"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// inlineServer serves code 10 with a handler that blocks on gate for a
// request whose body is "block", registered with HandleInline and pred.
func inlineServer(t *testing.T, pred func(*Conn, *protocol.Command) bool) (*Server, chan struct{}) {
	s, _ := startServer(t, ServerConfig{})
	gate := make(chan struct{})
	s.HandleInline(protocol.SendMessage, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		if string(req.Body) == "block" {
			<-gate
		}
		return protocol.NewResponse(req, protocol.ResponseSuccess, string(req.Body))
	}, pred)
	return s, gate
}

// callAsync invokes body on c and delivers the remark (or the error).
func callAsync(t *testing.T, c *Client, body string) chan string {
	out := make(chan string, 1)
	go func() {
		resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(protocol.SendMessage, nil, body))
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		out <- resp.Remark
	}()
	return out
}

// An accepted request runs on the read loop: while its handler waits the
// connection's next request is not served; one the predicate refuses runs
// on a handler goroutine and is. A panicking predicate counts as a refusal.
func TestHandleInline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pred   func(*Conn, *protocol.Command) bool
		inline bool
	}{
		{"accepted", func(*Conn, *protocol.Command) bool { return true }, true},
		{"refused", func(*Conn, *protocol.Command) bool { return false }, false},
		{"predicate panics", func(*Conn, *protocol.Command) bool { panic("boom") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, gate := inlineServer(t, tc.pred)
			c := dial(t, s, ClientConfig{})
			blocked := callAsync(t, c, "block")
			time.Sleep(20 * time.Millisecond) // the blocking request is read first
			next := callAsync(t, c, "next")
			select {
			case r := <-next:
				if tc.inline {
					t.Fatalf("next request answered (%q) while an inline handler blocks the read loop", r)
				}
			case <-time.After(100 * time.Millisecond):
				if !tc.inline {
					t.Fatal("next request held back by a handler not run inline")
				}
			}
			close(gate)
			if r := <-blocked; r != "block" {
				t.Fatalf("blocked request answered %q", r)
			}
			if tc.inline {
				if r := <-next; r != "next" {
					t.Fatalf("next request answered %q", r)
				}
			}
		})
	}
}

// An inline handler releases its slot, its bytes and its shutdown count
// like any handler: after many inline requests and a connection closed
// mid-handler, Shutdown returns at once and nothing is held.
func TestHandleInlineReleases(t *testing.T) {
	s, gate := inlineServer(t, func(*Conn, *protocol.Command) bool { return true })
	c := dial(t, s, ClientConfig{})
	for range 2 * DefaultMaxInflight { // more than the connection's slots
		if r := <-callAsync(t, c, "x"); r != "x" {
			t.Fatalf("answered %q", r)
		}
	}
	c2 := dial(t, s, ClientConfig{})
	callAsync(t, c2, "block")
	time.Sleep(20 * time.Millisecond)
	c2.Close()
	close(gate)
	if err := s.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if held := s.InboundHeldBytes(); held != 0 {
		t.Fatalf("%d inbound bytes held after shutdown", held)
	}
}
