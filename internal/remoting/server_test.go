package remoting

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

func TestRequestResponse(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	c := dial(t, s, ClientConfig{})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, map[string]string{"k": "v"}, "body"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != protocol.ResponseSuccess || !resp.IsResponse() || resp.Ext("k") != "v" ||
		string(resp.Body) != "body" || resp.Version != protocol.VersionV4_9_7 || resp.Language != protocol.DefaultLanguage {
		t.Fatalf("%+v", resp)
	}
}

func TestResponseMirrorsSerializeType(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	s.Handle(1, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		// A handler that builds its response by hand still gets the
		// request's opaque and serialize type.
		return &protocol.Command{Code: 0, ExtFields: map[string]string{"offset": "5"}}
	})
	nc := rawDial(t, s)
	for i, st := range []protocol.SerializeType{protocol.SerializeRocketMQ, protocol.SerializeJSON} {
		req := request(1, nil, "")
		req.Opaque, req.SerializeType = int32(40+i), st
		writeCmd(t, nc, req)
		resp := readCmd(t, nc)
		if resp.SerializeType != st || resp.Opaque != req.Opaque || !resp.IsResponse() || resp.Ext("offset") != "5" {
			t.Fatalf("%+v", resp)
		}
	}
}

func TestPipelined10k(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	c := dial(t, s, ClientConfig{})
	const workers, perWorker = 8, 1250
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var inner sync.WaitGroup
			for i := 0; i < perWorker; i++ {
				id := strconv.Itoa(w*perWorker + i)
				inner.Add(1)
				c.InvokeAsync(context.Background(), request(echoCode, map[string]string{"id": id}, id),
					func(resp *protocol.Command, err error) {
						defer inner.Done()
						if err != nil || resp.Ext("id") != id || string(resp.Body) != id {
							bad.Add(1)
						}
					})
			}
			inner.Wait()
		}(w)
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of %d responses wrong", n, workers*perWorker)
	}
	// And synchronous calls from the same goroutines share the connection.
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := strconv.Itoa(i)
			resp, err := c.Invoke(context.Background(), request(echoCode, map[string]string{"id": id}, ""))
			if err != nil || resp.Ext("id") != id {
				bad.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if bad.Load() != 0 || pendingLen(c.Conn) != 0 {
		t.Fatalf("bad %d pending %d", bad.Load(), pendingLen(c.Conn))
	}
}

func pendingLen(c *Conn) int {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return len(c.pending)
}

func TestOutOfOrderCompletion(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	release := make(chan struct{})
	s.Handle(1, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		<-release
		return protocol.NewResponse(req, 0, "slow")
	})
	c := dial(t, s, ClientConfig{})
	slowDone := make(chan *protocol.Command, 1)
	go func() {
		resp, _ := c.Invoke(context.Background(), request(1, nil, ""))
		slowDone <- resp
	}()
	// The fast request, sent after the slow one, completes while the slow
	// handler is still blocked.
	waitFor(t, "slow request in flight", time.Second, func() bool { return pendingLen(c.Conn) == 1 })
	resp, err := c.Invoke(ctxTimeout(t, 2*time.Second), request(echoCode, map[string]string{"x": "fast"}, ""))
	if err != nil || resp.Ext("x") != "fast" {
		t.Fatalf("%+v %v", resp, err)
	}
	select {
	case <-slowDone:
		t.Fatal("slow request finished first")
	default:
	}
	close(release)
	if r := <-slowDone; r == nil || r.Remark != "slow" {
		t.Fatalf("%+v", r)
	}
}

func TestDeferredReply(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	s.Handle(protocol.PullMessage, func(ctx context.Context, conn *Conn, req *protocol.Command) *protocol.Command {
		go func() { // a long-poll holder answering later
			time.Sleep(30 * time.Millisecond)
			resp := protocol.NewResponse(req, protocol.ResponsePullNotFound, "")
			resp.SetHeader(&protocol.PullMessageResponseHeader{NextBeginOffset: 7})
			conn.Reply(resp)
		}()
		return nil
	})
	c := dial(t, s, ClientConfig{})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(protocol.PullMessage, nil, ""))
	if err != nil || resp.Code != protocol.ResponsePullNotFound || resp.Ext("nextBeginOffset") != "7" {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestOnewayGetsNoReply(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	var ran atomic.Int32
	s.Handle(1, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		ran.Add(1)
		return protocol.NewResponse(req, 0, "must not be sent")
	})
	nc := rawDial(t, s)
	ow := request(1, nil, "")
	ow.Opaque, ow.Flag = 1, protocol.FlagOneway
	writeCmd(t, nc, ow)
	unknown := request(999, nil, "") // panicking/unknown paths are also skipped for oneway
	unknown.Opaque, unknown.Flag = 2, protocol.FlagOneway
	writeCmd(t, nc, unknown)
	waitFor(t, "oneway handler", time.Second, func() bool { return ran.Load() == 1 })
	normal := request(echoCode, nil, "")
	normal.Opaque = 3
	writeCmd(t, nc, normal)
	if resp := readCmd(t, nc); resp.Opaque != 3 {
		t.Fatalf("first frame back is %+v, want the reply to opaque 3", resp)
	}
	// Our client's InvokeOneway sets the flag.
	c := dial(t, s, ClientConfig{})
	if err := c.InvokeOneway(request(1, nil, "")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "client oneway", time.Second, func() bool { return ran.Load() == 2 })
}

func TestUnknownCode(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	c := dial(t, s, ClientConfig{})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(999, nil, ""))
	if err != nil || resp.Code != protocol.ResponseRequestCodeNotSupported || resp.Remark != " request type 999 not supported" {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestHandlerPanic(t *testing.T) {
	s, logs := startServer(t, ServerConfig{})
	s.Handle(1, func(context.Context, *Conn, *protocol.Command) *protocol.Command { panic("kaboom") })
	c := dial(t, s, ClientConfig{})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(1, nil, ""))
	if err != nil || resp.Code != protocol.ResponseSystemError || !strings.Contains(resp.Remark, "kaboom") {
		t.Fatalf("%+v %v", resp, err)
	}
	if !strings.Contains(logs.String(), "handler panic") {
		t.Fatalf("no log line: %s", logs.String())
	}
	if _, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, nil, "")); err != nil {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
}

func TestMalformedAndOversizedFramesCloseOnlyThatConnection(t *testing.T) {
	s, logs := startServer(t, ServerConfig{MaxFrame: 4096})
	good := dial(t, s, ClientConfig{})
	frames := map[string][]byte{
		"bad serialize type": {0, 0, 0, 6, 7, 0, 0, 2, '{', '}'},
		"bad json header":    {0, 0, 0, 6, 0, 0, 0, 2, '{', '{'},
		"header > frame":     {0, 0, 0, 6, 0, 0, 1, 0, '{', '}'},
		"negative length":    {0x80, 0, 0, 0},
		"oversized":          binary.BigEndian.AppendUint32(nil, 1<<20),
	}
	for name, f := range frames {
		nc := rawDial(t, s)
		if _, err := nc.Write(f); err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) { expectClosed(t, nc, 3*time.Second) })
	}
	if !strings.Contains(logs.String(), "bad frame") {
		t.Fatalf("no log line: %s", logs.String())
	}
	if _, err := good.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, nil, "")); err != nil {
		t.Fatalf("other connection affected: %v", err)
	}
	fresh := dial(t, s, ClientConfig{})
	if _, err := fresh.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, nil, "")); err != nil {
		t.Fatalf("server stopped accepting: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	s, _ := startServer(t, ServerConfig{IdleTimeout: 150 * time.Millisecond})
	idle := rawDial(t, s)
	busy := dial(t, s, ClientConfig{})
	start := time.Now()
	for time.Since(start) < 400*time.Millisecond {
		if _, err := busy.Invoke(ctxTimeout(t, time.Second), request(echoCode, nil, "")); err != nil {
			t.Fatalf("busy connection closed: %v", err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	expectClosed(t, idle, 2*time.Second)
	if busy.Closed() {
		t.Fatal("busy connection closed")
	}
	waitFor(t, "idle conn removed", time.Second, func() bool { return s.ConnCount() == 1 })
}

func TestServerToClientInvoke(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	conns := make(chan *Conn, 1)
	s.OnConnect(func(c *Conn) { conns <- c })
	mux := NewMux()
	notified := make(chan string, 1)
	mux.Handle(protocol.NotifyConsumerIdsChanged, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		notified <- req.Ext("consumerGroup")
		return nil
	})
	c := dial(t, s, ClientConfig{Mux: mux})
	c.Handle(protocol.GetConsumerRunningInfo, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.Body = []byte(`{"properties":{}}`)
		return resp
	})
	sc := <-conns
	hdr := &protocol.GetConsumerRunningInfoRequestHeader{ConsumerGroup: "cg", ClientID: "c1"}
	resp, err := sc.Invoke(ctxTimeout(t, 5*time.Second), protocol.NewRequest(protocol.GetConsumerRunningInfo, hdr))
	if err != nil || string(resp.Body) != `{"properties":{}}` {
		t.Fatalf("%+v %v", resp, err)
	}
	err = sc.InvokeOneway(protocol.NewRequest(protocol.NotifyConsumerIdsChanged, &protocol.ConsumerGroupHeader{ConsumerGroup: "cg"}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-notified:
		if g != "cg" {
			t.Fatal(g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("notify not delivered")
	}
	// The client's default handler answers unknown server requests with 3.
	resp, err = sc.Invoke(ctxTimeout(t, 5*time.Second), request(4242, nil, ""))
	if err != nil || resp.Code != protocol.ResponseRequestCodeNotSupported {
		t.Fatalf("%+v %v", resp, err)
	}
}

func TestPendingCallsFailWhenPeerDies(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	s.Handle(1, func(context.Context, *Conn, *protocol.Command) *protocol.Command { return nil }) // never answers
	c := dial(t, s, ClientConfig{})
	errs := make(chan error, 3)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := c.Invoke(context.Background(), request(1, nil, ""))
			errs <- err
		}()
	}
	c.InvokeAsync(context.Background(), request(1, nil, ""), func(_ *protocol.Command, err error) { errs <- err })
	waitFor(t, "calls in flight", time.Second, func() bool { return pendingLen(c.Conn) == 3 })
	s.Close()
	for i := 0; i < 3; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrConnClosed) {
				t.Fatalf("got %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("pending call did not fail promptly")
		}
	}
	if _, err := c.Invoke(context.Background(), request(1, nil, "")); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("call on dead connection: %v", err)
	}
	done := make(chan error, 1)
	c.InvokeAsync(context.Background(), request(1, nil, ""), func(_ *protocol.Command, err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrConnClosed) {
		t.Fatal(err)
	}
}

func TestInvokeContextTimeout(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	s.Handle(1, func(context.Context, *Conn, *protocol.Command) *protocol.Command { return nil })
	c := dial(t, s, ClientConfig{})
	_, err := c.Invoke(ctxTimeout(t, 30*time.Millisecond), request(1, nil, ""))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	c.InvokeAsync(ctxTimeout(t, 30*time.Millisecond), request(1, nil, ""), func(_ *protocol.Command, err error) { done <- err })
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if n := pendingLen(c.Conn); n != 0 {
		t.Fatalf("%d calls left pending", n)
	}
}

func TestShutdownWaitsForInflight(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	started := make(chan struct{})
	var finished atomic.Bool
	s.Handle(1, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		close(started)
		time.Sleep(200 * time.Millisecond)
		finished.Store(true)
		return protocol.NewResponse(req, 0, "done")
	})
	c := dial(t, s, ClientConfig{})
	result := make(chan *protocol.Command, 1)
	go func() {
		resp, _ := c.Invoke(context.Background(), request(1, nil, ""))
		result <- resp
	}()
	<-started
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- s.Shutdown(ctxTimeout(t, 5*time.Second)) }()
	// Requests arriving during shutdown are refused with 14.
	waitFor(t, "draining", time.Second, func() bool {
		s.tracker.mu.Lock()
		defer s.tracker.mu.Unlock()
		return s.tracker.closed
	})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, nil, ""))
	if err == nil && resp.Code != protocol.ResponseServiceNotAvailable {
		t.Fatalf("request during shutdown: %+v", resp)
	}
	if err := <-shutdownErr; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Shutdown returned before the handler finished")
	}
	if r := <-result; r == nil || r.Remark != "done" {
		t.Fatalf("in-flight response lost: %+v", r)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Fatal("server still accepting")
	}
}

func TestShutdownContextExpiry(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	block := make(chan struct{})
	defer close(block)
	s.Handle(1, func(context.Context, *Conn, *protocol.Command) *protocol.Command { <-block; return nil })
	c := dial(t, s, ClientConfig{})
	c.InvokeAsync(context.Background(), request(1, nil, ""), func(*protocol.Command, error) {})
	waitFor(t, "handler running", time.Second, func() bool { return trackerN(s) == 1 })
	if err := s.Shutdown(ctxTimeout(t, 50*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	waitFor(t, "connection closed", time.Second, c.Closed)
}

func trackerN(s *Server) int {
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	return s.tracker.n
}

// BenchmarkInvokeParallel measures pipelined round trips on one connection.
func BenchmarkInvokeParallel(b *testing.B) {
	lb := &logBuffer{}
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", Logger: newLogger(lb)})
	s.Handle(echoCode, echo)
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := Dial(context.Background(), s.Addr().String(), ClientConfig{Logger: newLogger(lb)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Invoke(context.Background(), request(echoCode, map[string]string{"k": "v"}, "payload")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
