package remoting

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqd/mqd/internal/protocol"
)

// TestRecycledHandlerServesEachRequestItsOwnFields pipelines requests with
// different ext key sets and bodies through a HandleRecycled handler:
// recycled Commands, maps and body buffers must never leak a field or a
// byte of an earlier request into a later one, in the request the handler
// sees or the response the client gets.
func TestRecycledHandlerServesEachRequestItsOwnFields(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	const code = 77
	var stale atomic.Int64
	s.HandleRecycled(code, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		n, _ := strconv.Atoi(req.Ext("id"))
		_, hasOdd := req.ExtFields["odd"]
		if hasOdd != (n%2 == 1) || req.Remark != "" || len(req.ExtFields) != 1+n%2 {
			stale.Add(1)
		}
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.SetExt("id", req.Ext("id"))
		if n%3 == 0 {
			resp.SetExt("three", "y")
		}
		resp.Body = slices.Clone(req.Body) // the request's body buffer is reused
		return resp
	})
	if !s.mux.recycles(code) {
		t.Fatal("HandleRecycled did not mark the code")
	}
	c := dial(t, s, ClientConfig{})
	const workers, perWorker = 4, 500
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inner sync.WaitGroup
			for i := range perWorker {
				n := w*perWorker + i
				id := strconv.Itoa(n)
				ext := map[string]string{"id": id}
				if n%2 == 1 {
					ext["odd"] = "1"
				}
				inner.Add(1)
				c.InvokeAsync(context.Background(), request(code, ext, id), func(resp *protocol.Command, err error) {
					defer inner.Done()
					_, three := resp.ExtFields["three"]
					if err != nil || resp.Ext("id") != id || string(resp.Body) != id || three != (n%3 == 0) {
						bad.Add(1)
					}
				})
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	if bad.Load() != 0 || stale.Load() != 0 {
		t.Fatalf("%d wrong responses, %d requests with stale fields", bad.Load(), stale.Load())
	}
	// Handle replaces the registration and its promise.
	s.Handle(code, echo)
	if s.mux.recycles(code) {
		t.Fatal("Handle kept the code recycled")
	}
}

// BenchmarkReadSendFrameRecycled reads SEND_MESSAGE_V2-shaped frames (1 KiB
// body) for a HandleRecycled code and hands command and body back as the
// connection does when the handler returned: the read path's share of the
// send path's allocations (issue 14).
func BenchmarkReadSendFrameRecycled(b *testing.B) {
	s := NewServer(ServerConfig{Logger: newLogger(&logBuffer{})})
	const code = 310
	// never run here; echo shares the request's map, so it must not be a
	// recycled handler on a live connection (the map would be recycled twice)
	s.HandleRecycled(code, echo)
	h := &protocol.SendMessageRequestHeader{ProducerGroup: "pg", Topic: "BenchTopic", DefaultTopic: "TBW102",
		DefaultTopicQueueNums: 4, QueueID: 1, BornTimestamp: 1_700_000_000_000, Properties: "TAGS\x01a\x02UNIQ_KEY\x01X\x02"}
	req := protocol.NewRequest(code, nil)
	req.ExtFields, req.Body = h.EncodeV2(), make([]byte, 1024)
	frame, _ := req.Encode()
	stream := bytes.Repeat(frame, 1024)
	cfg := s.connCfg
	cfg.idleTimeout = 0 // no net.Conn to set deadlines on
	c := &Conn{cfg: &cfg, done: make(chan struct{})}
	rd := bytes.NewReader(stream)
	fr := &frameReader{c: c, r: newConnReader(c, rd)}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 {
			rd.Reset(stream) // fr.r's buffer is empty: 1024 frames were read
		}
		cmd, held, body, err := fr.read()
		if err != nil {
			b.Fatal(err)
		}
		s.connCfg.inbound.release(held)
		cmd.Recycle()
		putBody(body)
	}
}
