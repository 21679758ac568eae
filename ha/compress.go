package ha

// Optional stream compression (FORMAT.md §3.1). A slave that wants it sets
// flagCompress in its hello; a master that knows the flag may then send a
// data message's payload as one S2 block (github.com/klauspost/compress/s2)
// and says so with sizeCompressed in the size field. A master that does not
// know the flag ignores it and sends plain payloads, which every slave
// reads; a slave that does not ask never receives a compressed payload.
//
// S2 rather than zstd: the stream is on the SYNC_MASTER acknowledgement
// path, so the codec must cost microseconds per batch on both ends (S2
// compresses at several hundred MB/s per core and decodes faster still),
// and an S2 block states its decoded length in its first bytes, so the
// slave can refuse an oversized block before it allocates anything. A
// block per message keeps every message self-contained: no stream state
// survives a reconnect.

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/s2"
)

const (
	// flagCompress (hello flags bit 1): the slave asks for S2 payloads.
	flagCompress = 2
	// sizeCompressed (bit 31 of a data message's size): the payload is an
	// S2 block holding the frames; size is the block's length.
	sizeCompressed = 1 << 31
	// minCompress: smaller payloads are sent plain (a few records gain
	// little and cost a second buffer copy).
	minCompress = 512
	sizeAt      = 16 // offset of the size field in a data header (putFrameHead)
)

// compressor is a master connection's encoder: one buffer, reused.
type compressor struct{ buf []byte }

// pack returns the data message msg (header + plain payload, the header
// already written) as it goes on the wire: a copy with the payload
// compressed when that makes it smaller, else msg itself.
func (z *compressor) pack(msg []byte) []byte {
	payload := msg[frameHead:]
	if len(payload) < minCompress {
		return msg
	}
	need := frameHead + s2.MaxEncodedLen(len(payload))
	if cap(z.buf) < need {
		z.buf = make([]byte, need)
	}
	out := z.buf[:need]
	block := s2.Encode(out[frameHead:], payload)
	if len(block) >= len(payload) {
		return msg
	}
	copy(out, msg[:frameHead])
	binary.BigEndian.PutUint32(out[sizeAt:], uint32(len(block))|sizeCompressed)
	return out[:frameHead+len(block)]
}

// takeCompressed reports whether a data header marks its payload as
// compressed and clears the mark, so parseFrameHead sees the block's
// plain length.
func takeCompressed(head []byte) bool {
	n := binary.BigEndian.Uint32(head[sizeAt:])
	binary.BigEndian.PutUint32(head[sizeAt:], n&^sizeCompressed)
	return n&sizeCompressed != 0
}

// decompressor is a slave connection's decoder: one buffer, reused.
type decompressor struct{ buf []byte }

// unpack decodes an S2 block into frames. The decoded length is read
// from the block's header and checked against maxFrame before anything is
// allocated, so a hostile or corrupted block cannot make the slave hold
// more than one maximum message. The result keeps 8 spare bytes of
// capacity (AppendReplica validates in place).
func (d *decompressor) unpack(block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("ha: corrupt compressed payload: %w", err)
	}
	if n <= 0 || n > maxFrame {
		return nil, fmt.Errorf("ha: compressed payload declares %d bytes (limit %d)", n, maxFrame)
	}
	if cap(d.buf) < n+8 {
		d.buf = make([]byte, n, n+8)
	}
	out, err := s2.Decode(d.buf[:n], block)
	if err != nil {
		return nil, fmt.Errorf("ha: corrupt compressed payload: %w", err)
	}
	if len(out) != n || &out[0] != &d.buf[0] {
		return nil, fmt.Errorf("ha: compressed payload decoded to %d bytes, declared %d", len(out), n)
	}
	return out, nil
}
