package protocol

import (
	"bytes"
	"testing"
)

// extObject returns the extFields object of a JSON header.
func extObject(t testing.TB, hdr []byte) []byte {
	i := bytes.Index(hdr, []byte(`"extFields":`))
	if i < 0 {
		t.Fatalf("no extFields in %q", hdr)
	}
	s := jsonScanner{b: hdr, i: i + len(`"extFields":`)}
	start := s.i
	if err := s.skip(0); err != nil {
		t.Fatal(err)
	}
	return hdr[start:s.i]
}

// TestFastSendExtTakesRealClients: the send headers real clients wrote are
// read by the compact reader, not left to the scanner (which would still
// decode them, only slower: nothing else would notice).
func TestFastSendExtTakesRealClients(t *testing.T) {
	n := 0
	for _, hdr := range headerSeeds(SerializeJSON) {
		c, err := decodeJSONHeader(hdr, true)
		if _, typed := c.SendHeader(); err != nil || !typed {
			continue
		}
		n++
		ext := extObject(t, hdr)
		var h SendMessageRequestHeader
		var props *propsBuf
		end, _, ok := fastSendExt(ext, 0, &h, &props)
		if !ok || end != len(ext) {
			t.Fatalf("compact reader refused a client's send header (end %d of %d): %s", end, len(ext), ext)
		}
	}
	if n < 4 {
		t.Fatalf("%d typed send headers among the seeds, want the 4 golden frames at least", n)
	}
}

// TestFastSendExtRefuses: the forms the compact reader leaves to the
// scanner, each still typed there or decoded as the map.
func TestFastSendExtRefuses(t *testing.T) {
	const base = `"a":"g","b":"T","c":"TBW102","d":"4","e":"1","f":"0","g":"1700000000000","h":"0"`
	for _, ext := range []string{
		`{ ` + base + `}`,                          // whitespace
		`{` + base + `,"m":"TRUE"}`,                // a flag spelt otherwise
		`{` + base + `,"l":"+16"}`,                 // a sign
		`{` + base + `,"l":"2147483648"}`,          // out of int32
		`{` + base + `,"l":16}`,                    // a number
		`{` + base + `,"b":"T\u00e9"}`,             // an escaped topic
		`{` + base + `,"x":"y"}`,                   // an unknown key
		`{` + base + `,"g":"1234567890123456789"}`, // 19 digits
		`{` + base + `,"topic":"T"}`,               // two namings
		`{"a":"g","b":"T"}`,                        // required fields missing
		`{"\u0061":"g","b":"T","c":"d","d":"4","e":"1","f":"0","g":"1","h":"0"}`, // an escaped key
	} {
		var h SendMessageRequestHeader
		var props *propsBuf
		if _, _, ok := fastSendExt([]byte(ext), 0, &h, &props); ok {
			t.Errorf("compact reader took %s", ext)
		}
	}
}

// FuzzFastSendExt is differential: whatever the compact reader takes, the
// scanner-based reader takes too, to the same header, naming and end.
func FuzzFastSendExt(f *testing.F) {
	for _, hdr := range headerSeeds(SerializeJSON) {
		if i := bytes.Index(hdr, []byte(`"extFields":`)); i >= 0 {
			f.Add(hdr[i+len(`"extFields":`):])
		}
	}
	f.Add([]byte(`{"a":"g","b":"T","c":"d","d":"4","e":"1","f":"0","g":"1","h":"0","i":"K\u0001v\u0002","m":"true","k":"false","l":"0"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow SendMessageRequestHeader
		var p1, p2 *propsBuf
		end, v2, ok := fastSendExt(data, 0, &fast, &p1)
		if !ok {
			return
		}
		s := jsonScanner{b: data}
		v2s, oks := decodeSendExt(&s, &slow, &p2)
		if !oks || v2 != v2s || end != s.i || fast != slow {
			t.Fatalf("compact reader: %+v v2=%v end=%d; scanner: %+v v2=%v end=%d ok=%v", fast, v2, end, slow, v2s, s.i, oks)
		}
	})
}
