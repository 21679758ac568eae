package protocol

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"testing"
)

// registerSeeds are the plain JSON bodies of a Java broker (Java's RegisterBrokerBody)
// and of mqd.
func registerSeeds() [][]byte {
	java := []byte(`{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":7,"timestamp":1700000000000},"topicConfigTable":{"T":{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":4}}}}`)
	out := [][]byte{java}
	if enc, err := registerBody().Encode(); err == nil {
		out = append(out, enc)
	}
	return out
}

// FuzzRegisterBody feeds arbitrary bytes to the plain (JSON) REGISTER_BROKER
// body decoder: no panic, allocation bounded by the input size.
func FuzzRegisterBody(f *testing.F) {
	for _, s := range registerSeeds() {
		f.Add(s)
	}
	f.Add([]byte(`{"topicConfigSerializeWrapper":{"topicConfigTable":{1:{"topicName":"x"}}},"filterServerList":["a",null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAllocBound(t, "register body", len(data), func() { DecodeRegisterBrokerBody(data, false) })
	})
}

// FuzzRegisterBodyCompressed fuzzes the compressed REGISTER_BROKER body
// (Java's RegisterBrokerBody). A fuzzer cannot forge zlib checksums, so the input is the
// inflated form, compressed here before decoding; the allocation bound is
// relative to the inflated size. The raw input is also decoded as is, to
// exercise the zlib layer.
func FuzzRegisterBodyCompressed(f *testing.F) {
	if z, err := registerBody().EncodeCompressed(); err == nil {
		if raw, err := inflate(z); err == nil {
			f.Add(raw)
		}
	}
	// A count that claims far more topics than the body holds.
	f.Add([]byte("\x00\x00\x00\x02{}\x7f\xff\xff\xff\x00\x00\x00\x09T 1 1 6 x\x00\x00\x00\x02[]"))
	// One compressor reused across executions (Reset): a new one costs
	// about a megabyte of state, which made this target ~10x slower than
	// the others. Executions within a worker run one at a time.
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, zlib.BestSpeed)
	f.Fuzz(func(t *testing.T, raw []byte) {
		zb.Reset()
		zw.Reset(&zb)
		zw.Write(raw)
		zw.Close()
		z := zb.Bytes()
		checkAllocBound(t, "compressed register body", len(raw)+len(z), func() { DecodeRegisterBrokerBody(z, true) })
		checkAllocBound(t, "compressed register body (raw input)", len(raw), func() { DecodeRegisterBrokerBody(raw, true) })
	})
}

func inflate(z []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// A compressed body whose topic count is as large as the inflated body
// allows must not pre-size a table for that many topics (issue 8: 8 KB
// of input, +1.3 GB).
func TestCompressedRegisterCountNotPresized(t *testing.T) {
	const n = 1 << 20
	raw := []byte("\x00\x00\x00\x02{}")
	raw = binary.BigEndian.AppendUint32(raw, n)
	raw = append(raw, make([]byte, n)...) // zero-length lines: parsing stops at the first
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	zw.Write(raw)
	zw.Close()
	checkAllocBound(t, "compressed register body", len(raw), func() {
		if _, err := DecodeRegisterBrokerBody(zb.Bytes(), true); err == nil {
			t.Error("body of empty topic lines accepted")
		}
	})
}
