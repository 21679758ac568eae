package remoting

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// encoded is c's wire form.
func encoded(t *testing.T, c *protocol.Command) []byte {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Connections that each start a large frame and stall (slowloris) hold at
// most the inbound budget plus one first chunk each; a small request on
// another connection is still served; a stalled frame completes once the
// others go away, and everything they held is released.
func TestInboundBudgetBoundsStalledFrames(t *testing.T) {
	const (
		budget = 256 << 10
		conns  = 8
		sent   = 96 << 10
	)
	s, lb := startServer(t, ServerConfig{MaxInboundBytes: budget})
	frame := encoded(t, request(echoCode, nil, strings.Repeat("b", 1<<20)))
	var stalled []interface{ Close() error }
	first := rawDial(t, s)
	first.Write(frame[:sent])
	for range conns - 1 {
		nc := rawDial(t, s)
		nc.Write(frame[:sent])
		stalled = append(stalled, nc)
	}
	waitFor(t, "a read loop to stall", 5*time.Second, func() bool { return s.InboundStalls() > 0 })
	time.Sleep(100 * time.Millisecond)
	if held := s.InboundHeldBytes(); held > budget+conns*inboundChunk {
		t.Fatalf("held %d bytes, budget %d + %d first chunks", held, budget, conns)
	}
	if !strings.Contains(lb.String(), "inbound byte budget full") {
		t.Fatalf("no log line for the stall:\n%s", lb.String())
	}

	small := rawDial(t, s)
	writeCmd(t, small, request(echoCode, nil, "small"))
	if resp := readCmd(t, small); string(resp.Body) != "small" {
		t.Fatalf("small request while the budget is full: %q", resp.Body)
	}

	for _, nc := range stalled {
		nc.Close()
	}
	first.Write(frame[sent:])
	if resp := readCmd(t, first); len(resp.Body) != 1<<20 {
		t.Fatalf("stalled frame answered with %d bytes", len(resp.Body))
	}
	waitFor(t, "the budget to drain", 5*time.Second, func() bool { return s.InboundHeldBytes() == 0 })
}

// A frame larger than the whole budget still runs, alone.
func TestInboundFrameLargerThanBudget(t *testing.T) {
	s, _ := startServer(t, ServerConfig{MaxInboundBytes: 64 << 10})
	nc := rawDial(t, s)
	body := strings.Repeat("x", 1<<20)
	writeCmd(t, nc, request(echoCode, nil, body))
	if resp := readCmd(t, nc); string(resp.Body) != body {
		t.Fatalf("got %d bytes back", len(resp.Body))
	}
	waitFor(t, "the budget to drain", 5*time.Second, func() bool { return s.InboundHeldBytes() == 0 })
}

// A body larger than its code declares is dropped unread and logged; the
// request still runs, without it, and the connection keeps its framing.
// Codes without a declaration keep their bodies.
func TestMaxRequestBodyDropsBody(t *testing.T) {
	const bodiless int16 = 1002
	s, lb := startServer(t, ServerConfig{MaxRequestBody: map[int16]int32{bodiless: 0, echoCode: 1 << 20}})
	var seen atomic.Int64
	s.Handle(bodiless, func(ctx context.Context, c *Conn, req *protocol.Command) *protocol.Command {
		seen.Store(int64(len(req.Body)) + 1)
		return echo(ctx, c, req)
	})
	nc := rawDial(t, s)
	req := request(bodiless, map[string]string{"k": "v"}, strings.Repeat("j", 4<<20))
	writeCmd(t, nc, req)
	resp := readCmd(t, nc)
	if len(resp.Body) != 0 || resp.ExtFields["k"] != "v" || seen.Load() != 1 {
		t.Fatalf("handler saw %d body bytes, answered %d, ext %v", seen.Load()-1, len(resp.Body), resp.ExtFields)
	}
	if !strings.Contains(lb.String(), "dropped unread") {
		t.Fatalf("no log line for the dropped body:\n%s", lb.String())
	}
	writeCmd(t, nc, request(echoCode, nil, "kept"))
	if resp := readCmd(t, nc); !bytes.Equal(resp.Body, []byte("kept")) {
		t.Fatalf("next request on the connection: %q", resp.Body)
	}
}

// A small request costs one frame buffer and the decoded command, as
// with protocol.Decoder (compare BenchmarkDecode in internal/protocol).
func BenchmarkReadFrameSmall(b *testing.B) {
	s := NewServer(ServerConfig{Logger: newLogger(&logBuffer{})})
	frame, _ := request(echoCode, map[string]string{"topic": "t", "queueId": "1"}, strings.Repeat("m", 512)).Encode()
	stream := bytes.Repeat(frame, 1024)
	cfg := s.connCfg
	cfg.idleTimeout = 0 // no net.Conn to set deadlines on
	c := &Conn{cfg: &cfg, done: make(chan struct{})}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	var fr *frameReader
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 {
			fr = &frameReader{c: c, r: newConnReader(c, bytes.NewReader(stream))}
		}
		_, held, _, err := fr.read()
		if err != nil {
			b.Fatal(err)
		}
		s.connCfg.inbound.release(held)
	}
}

// BenchmarkDecoderSmall is BenchmarkReadFrameSmall through protocol's
// Decoder (no budget, no per-code body limits), for comparison.
func BenchmarkDecoderSmall(b *testing.B) {
	frame, _ := request(echoCode, map[string]string{"topic": "t", "queueId": "1"}, strings.Repeat("m", 512)).Encode()
	stream := bytes.Repeat(frame, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	var dec *protocol.Decoder
	for i := 0; i < b.N; i++ {
		if i%1024 == 0 {
			dec = protocol.NewDecoder(bufio.NewReaderSize(bytes.NewReader(stream), 64<<10), 0)
		}
		if _, err := dec.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}
