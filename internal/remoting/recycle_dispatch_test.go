package remoting

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// TestRecycleDecidedAtDispatch: a request dispatched to a handler
// registered with plain Handle (which may keep its request) is not
// recycled when HandleRecycled replaces that handler while it runs: the
// connection recycles by the registration it dispatched to.
func TestRecycleDecidedAtDispatch(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	const code = 78
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex // orders the handler's writes before the checks (for -race)
	var kept, keptResp *protocol.Command
	s.Handle(code, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		mu.Lock()
		defer mu.Unlock()
		kept = req // allowed: registered with Handle
		close(entered)
		<-release
		keptResp = protocol.NewResponse(req, protocol.ResponseSuccess, "")
		keptResp.SetExt("k", "v")
		return keptResp
	})
	c := dial(t, s, ClientConfig{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.Invoke(context.Background(), request(code, map[string]string{"id": "1"}, "body")); err != nil {
			t.Error(err)
		}
	}()
	<-entered
	s.HandleRecycled(code, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		return protocol.NewResponse(req, protocol.ResponseSuccess, "")
	})
	close(release)
	<-done
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if kept.Code != code || kept.ExtFields["id"] != "1" {
		t.Fatalf("request kept by a Handle handler was recycled under it: %+v", *kept)
	}
	if keptResp.ExtFields["k"] != "v" {
		t.Fatalf("response of a Handle handler was recycled: %+v", *keptResp)
	}
}

// Oneway requests, big (>16 KiB, unpooled) and small (pooled) bodies, and
// connections closed while responses are queued, through a recycled
// handler: run under -race.
func TestRecycledOnewayAndClose(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	const code = 79
	s.HandleRecycled(code, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		sum := 0
		for _, b := range req.Body {
			sum += int(b)
		}
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.SetExt("n", req.Ext("n"))
		resp.SetExt("sum", strconv.Itoa(sum))
		return resp
	})
	for round := range 20 {
		c := dial(t, s, ClientConfig{})
		for i := range 200 {
			body := strings.Repeat(string(rune('a'+i%26)), 1+(i*997)%40000)
			req := request(code, map[string]string{"n": strconv.Itoa(i)}, body)
			if i%3 == 0 {
				c.InvokeOneway(req)
				continue
			}
			want := int('a'+i%26) * len(body)
			c.InvokeAsync(context.Background(), req, func(resp *protocol.Command, err error) {
				if err == nil && (resp.Ext("n") != strconv.Itoa(i) || resp.Ext("sum") != strconv.Itoa(want)) {
					t.Errorf("round %d req %d: wrong response %v", round, i, resp.ExtFields)
				}
			})
		}
		if round%2 == 0 {
			c.Close()
		} else {
			time.Sleep(20 * time.Millisecond)
			c.Close()
		}
	}
}
