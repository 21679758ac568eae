package ha

import (
	"bytes"
	"testing"
)

// FuzzHello feeds the master's hello decoder (v1 and the v2 epoch
// extension): no panic, and what it accepts is within bounds.
func FuzzHello(f *testing.F) {
	h := hello{version: versionEpochs, segmentSize: 1 << 20, offset: 4096, hasTrailer: true, trailer: 7}
	f.Add(append(h.encode(), helloEpochs{epoch: 3, start: 100}.encode()...))
	f.Add(hello{segmentSize: 1 << 20}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := readHello(r)
		if err != nil {
			return
		}
		if h.offset < 0 || h.segmentSize <= 0 {
			t.Fatalf("accepted %+v", h)
		}
		if h.version == versionEpochs {
			if x, err := readHelloEpochs(r); err == nil && (x.epoch < 0 || x.start < 0) {
				t.Fatalf("accepted %+v", x)
			}
		}
	})
}

// FuzzReply feeds the slave's reply decoder and the v2 extension.
func FuzzReply(f *testing.F) {
	f.Add(append(reply{status: statusTrunc, masterEnd: 900, remark: "cut"}.encode(),
		replyEpochs{epoch: 2, end: 300, later: []Entry{{4, 300}}}.encode()...))
	f.Add(reply{status: statusRefuse, remark: "no"}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		if _, err := readReply(r); err != nil {
			return
		}
		x, err := readReplyEpochs(r)
		if err != nil {
			return
		}
		if len(x.later) > MaxEpochs || x.end < 0 {
			t.Fatalf("accepted %+v", x)
		}
		for i, e := range x.later {
			if e.Epoch <= x.epoch || e.Start < x.end || (i > 0 && e.Epoch <= x.later[i-1].Epoch) {
				t.Fatalf("accepted %+v", x)
			}
		}
	})
}

// FuzzEpochFile feeds the epoch file decoder.
func FuzzEpochFile(f *testing.F) {
	f.Add(encodeEpochs([]Entry{{1, 0}, {2, 4096}}))
	f.Add(encodeEpochs(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeEpochs(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeEpochs(es), b) {
			t.Fatalf("accepted %x, which encodes back differently", b)
		}
	})
}
