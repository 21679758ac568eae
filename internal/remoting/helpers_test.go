package remoting

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger(lb *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startServer starts a server on a loopback port; it is closed at cleanup.
func startServer(t *testing.T, cfg ServerConfig) (*Server, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = newLogger(lb)
	}
	if cfg.Listener == nil && cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := NewServer(cfg)
	s.Handle(echoCode, echo)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

func dial(t *testing.T, s *Server, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = newLogger(&logBuffer{})
	}
	c, err := Dial(context.Background(), s.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const echoCode int16 = 1000

// echo answers with the request's ext fields and body.
func echo(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
	resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
	resp.ExtFields = req.ExtFields
	resp.Body = req.Body
	return resp
}

func request(code int16, ext map[string]string, body string) *protocol.Command {
	c := protocol.NewRequest(code, nil)
	c.ExtFields = ext
	if body != "" {
		c.Body = []byte(body)
	}
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// rawDial opens a plain TCP connection for speaking frames by hand.
func rawDial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func writeCmd(t *testing.T, nc net.Conn, c *protocol.Command) {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readCmd(t *testing.T, nc net.Conn) *protocol.Command {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	c, err := protocol.ReadFrame(nc, 0)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return c
}

// expectClosed waits until the peer closes nc.
func expectClosed(t *testing.T, nc net.Conn, within time.Duration) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 1024)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection not closed within %v", within)
		}
		return
	}
}

// countingListener wraps accepted conns to count Write calls.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: nc, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.l.writes.Add(1)
	return c.Conn.Write(p)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
