package remoting

import (
	"bytes"
	"io"
	"testing"
)

// chunkSource returns at most next bytes per Read from data.
type chunkSource struct {
	data []byte
	next int
}

func (s *chunkSource) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.next)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func testReader(budget int64, src io.Reader) (*connReader, *inboundBudget) {
	b := newInboundBudget(budget)
	c := &Conn{cfg: &connConfig{inbound: b}, done: make(chan struct{})}
	return newConnReader(c, src), b
}

// A reader whose reads fill its buffer doubles it up to maxReadBuffer, a
// quarter of the budget permitting; sparse reads halve it back; every byte
// arrives once, in order; close returns what it took.
func TestConnReaderAdapts(t *testing.T) {
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	src := &chunkSource{data: data, next: 1 << 20}
	cr, b := testReader(1<<20, src)
	var got bytes.Buffer
	p := make([]byte, 1000)
	for got.Len() < 2<<20 {
		n, err := cr.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(p[:n])
	}
	if len(cr.buf) != maxReadBuffer {
		t.Fatalf("buffer %d after full reads, want %d", len(cr.buf), maxReadBuffer)
	}
	if used := b.readBufs.Load(); used != maxReadBuffer-minReadBuffer || cr.extra != used {
		t.Fatalf("budget holds %d for read buffers, reader %d, want %d", used, cr.extra, maxReadBuffer-minReadBuffer)
	}
	src.next = 100 // sparse reads
	for {
		n, err := cr.Read(p)
		got.Write(p[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("bytes lost, repeated or reordered")
	}
	if len(cr.buf) != minReadBuffer || b.readBufs.Load() != 0 {
		t.Fatalf("buffer %d, budget %d after sparse reads; want %d, 0", len(cr.buf), b.readBufs.Load(), minReadBuffer)
	}
	cr.close()
	if b.readBufs.Load() != 0 {
		t.Fatalf("budget holds %d after close", b.readBufs.Load())
	}
}

// Read buffers grow only within a quarter of the inbound budget, however
// many connections fill them; the frames' own count is untouched.
func TestConnReaderGrowthBounded(t *testing.T) {
	const budget = 256 << 10 // a quarter: 64 KiB above the minimums
	b := newInboundBudget(budget)
	var readers []*connReader
	for range 8 {
		c := &Conn{cfg: &connConfig{inbound: b}, done: make(chan struct{})}
		cr := newConnReader(c, &chunkSource{data: make([]byte, 1<<20), next: 1 << 20})
		p := make([]byte, 512)
		for range 2000 {
			if _, err := cr.Read(p); err != nil {
				t.Fatal(err)
			}
		}
		readers = append(readers, cr)
	}
	if used := b.readBufs.Load(); used > budget/4 {
		t.Fatalf("read buffers took %d, bound %d", used, budget/4)
	}
	if b.held() != 0 {
		t.Fatalf("frames' count holds %d of read buffers", b.held())
	}
	for _, cr := range readers {
		cr.close()
	}
	if b.readBufs.Load() != 0 {
		t.Fatalf("budget holds %d after every close", b.readBufs.Load())
	}
}

// A read at least as large as the buffer goes straight into the caller's
// slice when nothing is buffered.
func TestConnReaderDirectRead(t *testing.T) {
	src := &chunkSource{data: bytes.Repeat([]byte("d"), 3*minReadBuffer), next: 3 * minReadBuffer}
	cr, _ := testReader(1<<20, src)
	p := make([]byte, 2*minReadBuffer)
	if n, err := cr.Read(p); n != len(p) || err != nil || cr.w != 0 {
		t.Fatalf("direct read: %d, %v, buffered %d", n, err, cr.w)
	}
}
