package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime/metrics"
	"testing"
)

// Allocation bound for the fuzz targets: decoding n bytes of client input
// may allocate at most allocPerByte*n + allocSlack bytes. The slack covers
// fixed costs (maps, scanners, reflection caches) and the per-P allocation
// caches the runtime flushes lazily into the counter; a decoder that
// pre-sizes from a count in its input (make(map, n) with n from the wire)
// exceeds it by orders of magnitude.
const (
	allocPerByte = 64
	allocSlack   = 4 << 20
)

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// checkAllocBound runs f and fails when it allocated more than the bound
// for n input bytes.
func checkAllocBound(t *testing.T, what string, n int, f func()) {
	t.Helper()
	before := heapAllocs()
	f()
	got := heapAllocs() - before
	if limit := uint64(allocPerByte*n + allocSlack); got > limit {
		t.Fatalf("%s: decoding %d bytes allocated %d bytes (bound %d)", what, n, got, limit)
	}
}

// A frame is allocated as its bytes arrive: a peer that announces a
// 16 MiB frame and sends 100 bytes costs the first 64 KiB chunk, not
// 16 MiB. (Its header length is checked against the frame before the
// header is decoded: TestDecodeErrors.)
func TestAnnouncedFrameNotAllocatedUpFront(t *testing.T) {
	stream := binary.BigEndian.AppendUint32(nil, DefaultMaxFrame-4)
	stream = append(stream, make([]byte, 100)...)
	before := heapAllocs()
	_, err := ReadFrame(bytes.NewReader(stream), 0)
	got := heapAllocs() - before
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut frame: %v", err)
	}
	if got > 256<<10 {
		t.Fatalf("a 16 MiB announcement with 100 bytes allocated %d bytes", got)
	}
}
