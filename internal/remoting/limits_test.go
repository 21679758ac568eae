package remoting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

const bigCode int16 = 1001

// bigResponses registers bigCode: every request gets a size-byte body.
func bigResponses(s *Server, size int) {
	body := make([]byte, size)
	s.Handle(bigCode, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.Body = body
		return resp
	})
}

// serverConn returns the server side of the only open connection.
func serverConn(t *testing.T, s *Server) *Conn {
	t.Helper()
	waitFor(t, "one connection", 5*time.Second, func() bool { return s.ConnCount() == 1 })
	return s.Conns()[0]
}

// A peer pipelines requests whose responses are large and never reads:
// the server's buffered bytes for it stay within the budget (the read loop
// stops reading it), other connections are still served, and once the
// peer reads it gets every response.
func TestByteBudgetSlowReader(t *testing.T) {
	const (
		budget = 1 << 20
		size   = 256 << 10
		n      = 300 // 75 MiB of responses: far more than socket buffers hold
	)
	s, lb := startServer(t, ServerConfig{MaxConnBytes: budget, ResponseReserve: map[int16]int64{bigCode: size + headerEstimate}})
	bigResponses(s, size)
	nc := rawDial(t, s)
	sc := serverConn(t, s)
	for i := 0; i < n; i++ {
		req := request(bigCode, nil, "")
		req.Opaque = int32(i + 1)
		writeCmd(t, nc, req)
	}
	waitFor(t, "the read loop to stall", 10*time.Second, func() bool { return sc.Stalls() > 0 })
	time.Sleep(100 * time.Millisecond) // let handlers that could still run, run
	if peak := sc.PeakBufferedBytes(); peak > budget {
		t.Fatalf("peak buffered %d bytes, budget %d", peak, budget)
	}
	if !strings.Contains(lb.String(), "over its byte budget") {
		t.Fatalf("no log line for the stall:\n%s", lb.String())
	}

	// Another connection is served meanwhile.
	other := dial(t, s, ClientConfig{})
	if _, err := other.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, nil, "x")); err != nil {
		t.Fatalf("other connection: %v", err)
	}

	// The slow reader reads: every response arrives, nothing was dropped.
	seen := make([]bool, n+1)
	for i := 0; i < n; i++ {
		resp := readCmd(t, nc)
		if resp.Code != protocol.ResponseSuccess || len(resp.Body) != size || resp.Opaque < 1 || resp.Opaque > n || seen[resp.Opaque] {
			t.Fatalf("response %d: code %d, %d bytes, opaque %d", i, resp.Code, len(resp.Body), resp.Opaque)
		}
		seen[resp.Opaque] = true
	}
	if peak := sc.PeakBufferedBytes(); peak > budget {
		t.Fatalf("peak buffered %d bytes, budget %d", peak, budget)
	}
	waitFor(t, "buffered bytes to drain", 5*time.Second, func() bool { return sc.BufferedBytes() == 0 })
}

// Without a reservation the budget still stops reading once the queued
// output is over it.
func TestByteBudgetWithoutReservation(t *testing.T) {
	const budget, size, n = 1 << 20, 512 << 10, 200
	s, _ := startServer(t, ServerConfig{MaxConnBytes: budget, MaxInflightPerConn: 1})
	bigResponses(s, size)
	nc := rawDial(t, s)
	sc := serverConn(t, s)
	for i := 0; i < n; i++ {
		writeCmd(t, nc, request(bigCode, nil, ""))
	}
	waitFor(t, "the read loop to stall", 10*time.Second, func() bool { return sc.Stalls() > 0 })
	time.Sleep(50 * time.Millisecond)
	// One handler runs at a time and starts only while the output is within
	// the budget, so at most one response lies past it.
	if peak := sc.PeakBufferedBytes(); peak > budget+size+headerEstimate {
		t.Fatalf("peak buffered %d bytes, budget %d", peak, budget)
	}
}

// Charges (parked long polls) count against the budget like queued output.
func TestByteBudgetCharge(t *testing.T) {
	s, _ := startServer(t, ServerConfig{MaxConnBytes: 1 << 20})
	parked := make(chan *Conn, 1)
	s.Handle(1002, func(_ context.Context, c *Conn, _ *protocol.Command) *protocol.Command {
		c.Charge(2 << 20)
		parked <- c
		return nil
	})
	c := dial(t, s, ClientConfig{})
	c.InvokeOneway(request(1002, nil, ""))
	sc := <-parked
	got := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), request(echoCode, nil, "x"))
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("request answered while the connection is over budget (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	sc.Charge(-2 << 20)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request not answered after the charge was released")
	}
}

// The connection limit closes the N+1th connection at accept and logs it;
// once a connection closes a new one is accepted.
func TestConnectionLimit(t *testing.T) {
	s, lb := startServer(t, ServerConfig{MaxConns: 2})
	a := dial(t, s, ClientConfig{})
	b := dial(t, s, ClientConfig{})
	for _, c := range []*Client{a, b} {
		if _, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, nil, "x")); err != nil {
			t.Fatal(err)
		}
	}
	extra := rawDial(t, s)
	expectClosed(t, extra, 5*time.Second)
	if s.RefusedConns() != 1 || s.ConnCount() != 2 {
		t.Fatalf("refused %d, open %d", s.RefusedConns(), s.ConnCount())
	}
	if !strings.Contains(lb.String(), "connection limit reached") {
		t.Fatalf("no log line:\n%s", lb.String())
	}
	a.Close()
	waitFor(t, "the close", 5*time.Second, func() bool { return s.ConnCount() == 1 })
	c := dial(t, s, ClientConfig{})
	if _, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(echoCode, nil, "x")); err != nil {
		t.Fatalf("after a close: %v", err)
	}
}
