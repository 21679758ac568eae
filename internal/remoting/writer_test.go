package remoting

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqd/mqd/internal/protocol"
)

// TestWriteCoalescing: 256 replies that become ready together must leave in
// a handful of writes, not 256.
func TestWriteCoalescing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	s, _ := startServer(t, ServerConfig{Listener: cl})
	const n = 256
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	s.Handle(1, func(_ context.Context, _ *Conn, req *protocol.Command) *protocol.Command {
		arrived.Done()
		<-release
		return protocol.NewResponse(req, 0, "")
	})
	nc := rawDial(t, s)
	var burst []byte
	for i := 0; i < n; i++ {
		req := request(1, nil, "")
		req.Opaque = int32(i + 1)
		burst, _ = req.AppendTo(burst)
	}
	if _, err := nc.Write(burst); err != nil {
		t.Fatal(err)
	}
	arrived.Wait()
	before := cl.writes.Load()
	close(release)
	seen := map[int32]bool{}
	for len(seen) < n {
		resp := readCmd(t, nc)
		seen[resp.Opaque] = true
	}
	writes := cl.writes.Load() - before
	t.Logf("%d replies in %d writes", n, writes)
	if writes > n/4 {
		t.Fatalf("%d replies took %d writes", n, writes)
	}
}

// TestClientWriteCoalescing: a burst of async requests from one goroutine
// reaches the server in few reads' worth of writes; checked indirectly by
// counting the client's writes through a wrapped conn.
func TestClientWriteCoalescing(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingListener{}
	cc := (&ClientConfig{Logger: newLogger(&logBuffer{})}).connConfig()
	conn := newConn(&countingConn{Conn: nc, l: counter}, cc)
	conn.start()
	defer conn.Close()
	const n = 256
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		conn.InvokeAsync(context.Background(), request(echoCode, nil, "x"), func(_ *protocol.Command, err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	t.Logf("%d requests in %d writes", n, counter.writes.Load())
	if w := counter.writes.Load(); w > n/4 {
		t.Fatalf("%d requests took %d writes", n, w)
	}
}

func TestBodyPartsAndReplyThen(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	big := bytes.Repeat([]byte("A"), inlineBodyMax+1)
	parts := [][]byte{bytes.Repeat([]byte("b"), 100), nil, bytes.Repeat([]byte("C"), 70000)}
	written := make(chan error, 1)
	s.Handle(protocol.PullMessage, func(_ context.Context, conn *Conn, req *protocol.Command) *protocol.Command {
		resp := protocol.NewResponse(req, protocol.ResponseSuccess, "")
		resp.SetHeader(&protocol.PullMessageResponseHeader{NextBeginOffset: 3})
		resp.Body = big
		resp.BodyParts = parts
		conn.ReplyThen(resp, func(err error) { written <- err })
		return nil
	})
	c := dial(t, s, ClientConfig{})
	resp, err := c.Invoke(ctxTimeout(t, 5*time.Second), request(protocol.PullMessage, nil, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, big...), parts[0]...), parts[2]...)
	if !bytes.Equal(resp.Body, want) || resp.Ext("nextBeginOffset") != "3" {
		t.Fatalf("body of %d bytes, want %d", len(resp.Body), len(want))
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	// Mixed small and large bodies in one batch keep their order.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		body := string(bytes.Repeat([]byte{byte('a' + i)}, (i%3)*inlineBodyMax))
		wg.Add(1)
		c.InvokeAsync(context.Background(), request(echoCode, nil, body), func(r *protocol.Command, err error) {
			defer wg.Done()
			if err != nil || string(r.Body) != body {
				t.Errorf("echo of %d bytes broken: %v", len(body), err)
			}
		})
	}
	wg.Wait()
}

func TestReplyAfterClose(t *testing.T) {
	s, _ := startServer(t, ServerConfig{})
	held := make(chan *Conn, 1)
	reqs := make(chan *protocol.Command, 1)
	s.Handle(1, func(_ context.Context, conn *Conn, req *protocol.Command) *protocol.Command {
		held <- conn
		reqs <- req
		return nil
	})
	c := dial(t, s, ClientConfig{})
	c.InvokeAsync(context.Background(), request(1, nil, ""), func(*protocol.Command, error) {})
	sc, req := <-held, <-reqs
	c.Close()
	waitFor(t, "server side close", 2*time.Second, sc.Closed)
	called := make(chan error, 1)
	err := sc.ReplyThen(protocol.NewResponse(req, 0, ""), func(err error) { called <- err })
	if err == nil || <-called == nil {
		t.Fatal("reply on a closed connection succeeded")
	}
	if sc.Context().Err() == nil || sc.Err() == nil {
		t.Fatal("context not cancelled / no close cause")
	}
}

// recordingConn keeps what is written to it; once failAfter bytes are
// written (when set), a write fails instead.
type recordingConn struct {
	net.Conn
	buf       bytes.Buffer
	failAfter int
}

var errInjectedWrite = errors.New("injected write failure")

func (c *recordingConn) Write(p []byte) (int, error) {
	if c.failAfter > 0 && c.buf.Len()+len(p) > c.failAfter {
		return 0, errInjectedWrite
	}
	return c.buf.Write(p)
}

// chunkBatch is a batch that encodes to several writeChunks, mixing inline
// bodies, bodies written as their own segment and BodyParts, so chunk
// boundaries fall next to each kind; ends[i] is where item i's bytes end
// in want.
func chunkBatch() (batch []outItem, want []byte, ends []int) {
	for i := range 200 {
		cmd := request(echoCode, nil, "")
		cmd.Opaque = int32(i)
		fill := func(n int) []byte { return bytes.Repeat([]byte{byte(i)}, n) }
		switch i % 4 {
		case 0, 1:
			cmd.Body = fill(8 << 10) // inline: copied next to its header
		case 2:
			cmd.Body = fill(inlineBodyMax + 1) // its own writev segment
		case 3:
			cmd.Body = fill(100)
			cmd.BodyParts = [][]byte{fill(3 << 10), nil, fill(20 << 10)}
		}
		batch = append(batch, outItem{cmd: cmd})
		want, _ = cmd.AppendTo(want)
		ends = append(ends, len(want))
	}
	return batch, want, ends
}

func newRecordingConn(t *testing.T) (*recordingConn, *Conn) {
	a, b := net.Pipe() // for the addresses; writes stay in rc
	t.Cleanup(func() { a.Close(); b.Close() })
	rc := &recordingConn{Conn: a}
	return rc, newConn(rc, (&ClientConfig{Logger: newLogger(&logBuffer{})}).connConfig())
}

// TestLargeBatchWrittenInChunks: a batch that encodes to several
// writeChunks goes out whole and in order, and the encode buffer stays
// near writeChunk instead of growing with the batch (and being dropped past
// keepBufferMax, to be regrown for the next one).
func TestLargeBatchWrittenInChunks(t *testing.T) {
	rc, c := newRecordingConn(t)
	batch, want, _ := chunkBatch()
	if len(want) < 4*writeChunk {
		t.Fatalf("batch of %d bytes: too small to test chunks", len(want))
	}
	var w batchWriter
	for round := range 2 {
		rc.buf.Reset()
		if sent, err := w.write(c, batch); err != nil || sent != len(batch) {
			t.Fatalf("round %d: write = %d, %v", round, sent, err)
		}
		if !bytes.Equal(rc.buf.Bytes(), want) {
			t.Fatalf("round %d: %d bytes written, want the batch's %d in order", round, rc.buf.Len(), len(want))
		}
		if c := cap(w.buf); c == 0 || c > 2*writeChunk {
			t.Fatalf("round %d: encode buffer capacity %d after a %d-byte batch (chunk %d)", round, c, len(want), writeChunk)
		}
	}
}

// TestChunkedWriteFailure: a write failing mid-batch stops the batch; the
// items reported sent are exactly those whose bytes all went out before it.
func TestChunkedWriteFailure(t *testing.T) {
	rc, c := newRecordingConn(t)
	batch, want, ends := chunkBatch()
	rc.failAfter = len(want) / 2
	var w batchWriter
	sent, err := w.write(c, batch)
	if !errors.Is(err, errInjectedWrite) {
		t.Fatalf("write error %v, want the injected one", err)
	}
	if sent == 0 || sent == len(batch) {
		t.Fatalf("%d of %d items reported sent", sent, len(batch))
	}
	if got := rc.buf.Bytes(); len(got) < ends[sent-1] || !bytes.Equal(got[:ends[sent-1]], want[:ends[sent-1]]) {
		t.Fatalf("%d bytes written; the %d items reported sent need their %d bytes first", len(got), sent, ends[sent-1])
	}
	if ends[sent-1] > rc.failAfter {
		t.Fatalf("item %d reported sent ends at byte %d, after the failure at %d", sent-1, ends[sent-1], rc.failAfter)
	}
}
