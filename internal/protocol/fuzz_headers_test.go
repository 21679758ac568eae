package protocol

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// headerSeeds returns the header bytes (without length and type words) of
// the golden frames and sample commands in the given serialize type.
func headerSeeds(st SerializeType) [][]byte {
	var frames [][]byte
	files, _ := filepath.Glob(filepath.Join("testdata", "*.frame"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			frames = append(frames, b)
		}
	}
	for _, c := range sampleCommands() {
		c.SerializeType = st
		if b, err := c.Encode(); err == nil {
			frames = append(frames, b)
		}
	}
	var out [][]byte
	for _, fr := range frames {
		if len(fr) < 8 {
			continue
		}
		word := binary.BigEndian.Uint32(fr[4:])
		hl := int(word & maxHeaderLen)
		if SerializeType(word>>24) == st && 8+hl <= len(fr) {
			out = append(out, fr[8:8+hl])
		}
	}
	return out
}

// FuzzJSONHeader feeds arbitrary bytes to the JSON (type 0) header
// decoder: no panic, allocation bounded by the input size, and an accepted
// header re-encodes to one that decodes to the same command.
func FuzzJSONHeader(f *testing.F) {
	for _, h := range headerSeeds(SerializeJSON) {
		f.Add(h)
	}
	f.Add([]byte(`{"code":1,"extFields":{"a":5,"b":null,"c":true},"x":[{"y":{}}],"language":3}`))
	f.Add([]byte(`{"code":"12","remark":null,"extFields":null,"opaque":-1,"flag":"1"}`))
	f.Add([]byte(`{"remark":"\u00e9\ud83d\ude00\\n","extFields":{"k\"":"v\u0000"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkHeader(t, SerializeJSON, func(b []byte) (*Command, error) { return decodeJSONHeader(b, false) }, data)
	})
}

// FuzzBinaryHeader feeds arbitrary bytes to the ROCKETMQ (type 1) header
// decoder with the same checks.
func FuzzBinaryHeader(f *testing.F) {
	for _, h := range headerSeeds(SerializeRocketMQ) {
		f.Add(h)
	}
	f.Add(binHeader(0, 7, []byte{0, 1, 'k', 0, 0, 0, 0}))
	f.Add(binHeader(0, 7, []byte{0x80, 0, 'k', 0xff, 0xff, 0xff, 0xff}))
	f.Add(binHeader(-1, 0, nil))
	f.Fuzz(func(t *testing.T, data []byte) { checkHeader(t, SerializeRocketMQ, decodeBinaryHeader, data) })
}

// checkHeader decodes data with decode under the allocation bound; an
// accepted header must encode and decode to the same command.
func checkHeader(t *testing.T, st SerializeType, decode func([]byte) (*Command, error), data []byte) {
	t.Helper()
	var (
		c   *Command
		err error
	)
	checkAllocBound(t, st.String()+" header", len(data), func() { c, err = decode(data) })
	if err != nil {
		return
	}
	c.SerializeType = st
	frame, err := c.Encode()
	if err != nil {
		t.Fatalf("decoded header does not re-encode: %v", err)
	}
	c2, err := DecodeFrame(frame[4:])
	if err != nil {
		t.Fatalf("re-encoded header does not decode: %v\nframe %q", err, frame)
	}
	if !sameCommand(c, c2) {
		t.Fatalf("unstable round trip\n c1 %+v\n c2 %+v", c, c2)
	}
}
