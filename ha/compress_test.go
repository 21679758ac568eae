package ha

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
)

// message builds a data message (header + payload) as the sender does.
func message(payload []byte) []byte {
	msg := make([]byte, frameHead+len(payload))
	putFrameHead(msg, 4096, 8192, len(payload))
	copy(msg[frameHead:], payload)
	return msg
}

// unwire is the receiving side of pack: header check, then the payload.
func unwire(t testing.TB, wire []byte) []byte {
	head := append([]byte(nil), wire[:frameHead]...)
	compressed := takeCompressed(head)
	off, end, n, err := parseFrameHead(head)
	if err != nil || off != 4096 || end != 8192 || n != len(wire)-frameHead {
		t.Fatalf("header: %d %d %d %v", off, end, n, err)
	}
	if !compressed {
		return wire[frameHead:]
	}
	var d decompressor
	out, err := d.unpack(wire[frameHead:])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPackRoundTrip(t *testing.T) {
	text := bytes.Repeat([]byte("topic=T queue=3 body=hello world "), 2000)
	random := make([]byte, 4000)
	for i := range random {
		random[i] = byte(i*7919 ^ i>>3*31)
	}
	for _, tc := range []struct {
		name           string
		payload        []byte
		wantCompressed bool
	}{
		{"compressible", text, true},
		{"small", text[:minCompress-1], false},
		{"incompressible", s2.Encode(nil, text), false}, // already-compressed bytes do not shrink
	} {
		t.Run(tc.name, func(t *testing.T) {
			var z compressor
			wire := z.pack(message(tc.payload))
			compressed := binary.BigEndian.Uint32(wire[sizeAt:])&sizeCompressed != 0
			if compressed != tc.wantCompressed {
				t.Fatalf("compressed %v, want %v", compressed, tc.wantCompressed)
			}
			if compressed && len(wire) >= frameHead+len(tc.payload) {
				t.Fatalf("compressed message of %d bytes for a %d-byte payload", len(wire), len(tc.payload))
			}
			if got := unwire(t, wire); !bytes.Equal(got, tc.payload) {
				t.Fatal("payload changed in transit")
			}
		})
	}
}

// TestUnpackIsBounded: a block that declares more than maxFrame, or lies
// about its length, is refused before the slave allocates for it.
func TestUnpackIsBounded(t *testing.T) {
	huge := binary.AppendUvarint(nil, 1<<30) // S2 block header: decoded length
	huge = append(huge, 0, 0, 0, 0)
	lying := s2.Encode(nil, bytes.Repeat([]byte("abcd"), 1000))
	lying[0]++ // declares one byte more than it decodes to
	for _, tc := range []struct {
		name  string
		block []byte
	}{
		{"declares 1 GiB", huge},
		{"declares maxFrame+1", append(binary.AppendUvarint(nil, maxFrame+1), 0)},
		{"length lies", lying},
		{"empty", nil},
		{"truncated", s2.Encode(nil, bytes.Repeat([]byte("abcd"), 1000))[:20]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d decompressor
			if out, err := d.unpack(tc.block); err == nil {
				t.Fatalf("accepted: %d bytes", len(out))
			}
			if cap(d.buf) > 4100 {
				t.Fatalf("allocated %d bytes for a refused block", cap(d.buf))
			}
		})
	}
}

// FuzzUnpack feeds the slave's decoder hostile blocks (it must refuse or
// stay within maxFrame, never panic) and checks that what the master packs
// the slave gets back unchanged.
func FuzzUnpack(f *testing.F) {
	f.Add(s2.Encode(nil, bytes.Repeat([]byte("frame "), 200)))
	f.Add(binary.AppendUvarint(nil, maxFrame+1))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d decompressor
		if out, err := d.unpack(data); err == nil && (len(out) > maxFrame || cap(d.buf) > maxFrame+8) {
			t.Fatalf("decoded %d bytes (buffer %d), limit %d", len(out), cap(d.buf), maxFrame)
		}
		var z compressor
		if got := unwire(t, z.pack(message(data))); !bytes.Equal(got, data) {
			t.Fatal("round trip changed the payload")
		}
	})
}

// codecPayload is n bytes of frames-like data: 1 KiB JSON business
// events behind a 100-byte record header that varies like a real one.
func codecPayload(n int) []byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	var b []byte
	for len(b) < n {
		for range 25 { // header: sizes, offsets, timestamps, hosts
			b = binary.BigEndian.AppendUint32(b, rnd.Uint32()>>uint(rnd.IntN(32)))
		}
		for start := len(b); len(b)-start < 1024; {
			b = fmt.Appendf(b, `{"orderId":%d,"userId":"u%07d","sku":"SKU-%05d","qty":%d,"price":%d.%02d,"status":"%s"},`,
				rnd.Int64N(1e12), rnd.IntN(1e7), rnd.IntN(1e5), 1+rnd.IntN(9), rnd.IntN(1000), rnd.IntN(100),
				[]string{"CREATED", "PAID", "SHIPPED"}[rnd.IntN(3)])
		}
	}
	return b[:n]
}

// BenchmarkCodec measures the S2 codec alone on a SYNC_MASTER-sized
// message (16 KiB: one flush round of 1 KiB records) and a catch-up batch
// (256 KiB): MB/s of frames per core for pack (master) and unpack
// (slave), and the wire bytes per frame byte.
func BenchmarkCodec(b *testing.B) {
	for _, n := range []int{16 << 10, 256 << 10} {
		msg := message(codecPayload(n))
		var z compressor
		wire := append([]byte(nil), z.pack(msg)...)
		ratio := float64(len(wire)-frameHead) / float64(n)
		b.Run(fmt.Sprintf("pack-%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				z.pack(msg)
			}
			b.ReportMetric(ratio, "wire-B/B")
		})
		b.Run(fmt.Sprintf("unpack-%dKiB", n>>10), func(b *testing.B) {
			var d decompressor
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := d.unpack(wire[frameHead:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
