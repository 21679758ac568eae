package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
)

// sameCommand compares the wire-visible fields of two commands, treating
// nil and empty maps/bodies as equal.
func sameCommand(a, b *Command) bool {
	return a.Code == b.Code && a.Language == b.Language && a.Version == b.Version &&
		a.Opaque == b.Opaque && a.Flag == b.Flag && a.Remark == b.Remark &&
		a.SerializeType == b.SerializeType && maps.Equal(a.ExtFields, b.ExtFields) &&
		bytes.Equal(wireBody(a), wireBody(b))
}

func wireBody(c *Command) []byte {
	out := append([]byte(nil), c.Body...)
	for _, p := range c.BodyParts {
		out = append(out, p...)
	}
	return out
}

func roundTrip(t *testing.T, c *Command) *Command {
	t.Helper()
	frame, err := c.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	got, err := ReadFrame(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !sameCommand(c, got) {
		t.Fatalf("round trip mismatch\n in: %+v\nout: %+v", c, got)
	}
	return got
}

func sampleCommands() []*Command {
	return []*Command{
		{Code: 10, Language: "GO", Version: 317, Opaque: 1, ExtFields: map[string]string{"topic": "T"}, Body: []byte("hello")},
		{Code: 0, Language: "JAVA", Version: 407, Opaque: -5, Flag: 1, Remark: "ok"},
		{Code: -1, Language: "RUST", Version: -32768, Opaque: 2147483647, Flag: -1},
		{Code: 17, Language: "JAVA", Remark: "quote \" backslash \\ nl \n tab \t ctl \x01 uni é 😀",
			ExtFields: map[string]string{"": "", "k\"ey": "v\x02al\u2028", "p": "TAGS\x01a\x02"}},
		{Code: 11, Language: "JAVA", ExtFields: map[string]string{}, Body: []byte{}},
	}
}

func TestRoundTripBothHeaderTypes(t *testing.T) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		for _, c := range sampleCommands() {
			c.SerializeType = st
			roundTrip(t, c)
		}
	}
}

func TestJSONHeaderExactForm(t *testing.T) {
	c := &Command{Code: 10, Language: "GO", Version: 317, Opaque: 1,
		ExtFields: map[string]string{"b": "2", "a": "x\x01y"}}
	frame, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"code":10,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"a":"x\u0001y","b":"2"}}`
	if got := string(frame[8:]); got != want {
		t.Fatalf("header\n got %s\nwant %s", got, want)
	}
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("length field %d, frame %d", n, len(frame))
	}
	if hl := binary.BigEndian.Uint32(frame[4:]); int(hl) != len(want) {
		t.Fatalf("header length word %#x", hl)
	}
}

// TestJSONHeaderGoClientView decodes our header with encoding/json into the
// shape the Go client uses: every extFields value must be a JSON string.
func TestJSONHeaderGoClientView(t *testing.T) {
	req := &Command{Opaque: 77}
	resp := NewResponse(req, ResponsePullNotFound, "")
	resp.SetHeader(&PullMessageResponseHeader{NextBeginOffset: 5, MaxOffset: 9})
	frame, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		Code      int16             `json:"code"`
		Language  string            `json:"language"`
		Version   int16             `json:"version"`
		Opaque    int32             `json:"opaque"`
		Flag      int32             `json:"flag"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	if err := json.Unmarshal(frame[8:], &view); err != nil {
		t.Fatalf("go-client view rejects header: %v", err)
	}
	if view.Opaque != 77 || view.Flag&1 == 0 || view.ExtFields["nextBeginOffset"] != "5" ||
		view.Version != 407 || view.Code != 19 {
		t.Fatalf("unexpected view %+v", view)
	}
}

func jsonFrame(header string, body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	f = binary.BigEndian.AppendUint32(f, uint32(len(header)))
	return append(append(f, header...), body...)
}

func TestJSONHeaderTolerance(t *testing.T) {
	cases := map[string]*Command{
		// Java fastjson output: sorted keys, no remark, extra key.
		`{"code":0,"extFields":{"offset":"5"},"flag":1,"language":"JAVA","opaque":5,"serializeTypeCurrentRPC":"JSON","version":407}`: {Code: 0, Flag: 1, Language: "JAVA", Opaque: 5, Version: 407, ExtFields: map[string]string{"offset": "5"}},
		`{"code":34,"remark":null,"extFields":null}`: {Code: 34},
		`{}`: {},
		` { "code" : "12" , "language" : 9 , "opaque":-3 } `:          {Code: 12, Language: "GO", Opaque: -3},
		`{"extFields":{"n":5,"f":1.5e3,"b":true,"z":null,"s":"x"}}`:   {ExtFields: map[string]string{"n": "5", "f": "1.5e3", "b": "true", "s": "x"}},
		`{"unknown":{"nested":[1,{"a":[]},"x",null,false]},"code":1}`: {Code: 1},
		`{"remark":"\u00e9\ud83d\ude00\ud800x\/"}`:                    {Remark: "é😀\uFFFDx/"},
		"{\"remark\":\"bad\xffutf8\"}":                                {Remark: "bad\uFFFDutf8"},
	}
	for h, want := range cases {
		got, err := ReadFrame(bytes.NewReader(jsonFrame(h, nil)), 0)
		if err != nil {
			t.Errorf("%s: %v", h, err)
			continue
		}
		if !sameCommand(want, got) {
			t.Errorf("%s:\n got %+v\nwant %+v", h, got, want)
		}
	}
}

func TestJSONStringDecodeMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`"plain"`, `"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ud83dx"`, `"\ude00"`, `"\ud83d\u0041"`, `"é中😀"`, "\"\xff\xfe\"",
	}
	for _, in := range inputs {
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		s := jsonScanner{b: []byte(in)}
		got, err := s.str()
		if err != nil || got != want {
			t.Errorf("%q: got %q (%v), want %q", in, got, err, want)
		}
		// And our writer's output decodes back to the same string.
		var back string
		if err := json.Unmarshal(appendJSONString(nil, got), &back); err != nil || back != want {
			t.Errorf("%q: writer output %s decodes to %q (%v)", in, appendJSONString(nil, got), back, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	big := binary.BigEndian.AppendUint32(nil, DefaultMaxFrame)
	cases := []struct {
		name  string
		frame []byte
		kind  error
	}{
		{"oversized", big, ErrFrameTooLarge},
		{"negative", []byte{0xff, 0xff, 0xff, 0xfe}, ErrFrameLength},
		{"too short", []byte{0, 0, 0, 3, 1, 2, 3}, ErrFrameLength},
		{"serialize type", []byte{0, 0, 0, 4, 2, 0, 0, 0}, ErrSerializeType},
		{"header > frame", []byte{0, 0, 0, 6, 0, 0, 0, 3, '{', '}'}, ErrHeaderLength},
		{"bad json", jsonFrame(`{"code":`, nil), ErrMalformedHeader},
		{"json trailing", jsonFrame(`{} x`, nil), ErrMalformedHeader},
		{"json code range", jsonFrame(`{"code":70000}`, nil), ErrMalformedHeader},
		{"json float code", jsonFrame(`{"code":1.5}`, nil), ErrMalformedHeader},
		{"json ext object", jsonFrame(`{"extFields":{"a":{}}}`, nil), ErrMalformedHeader},
		{"json deep", jsonFrame(`{"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`, nil), ErrMalformedHeader},
		{"binary short", binFrame(make([]byte, 20)), ErrMalformedHeader},
		{"binary remark len", binFrame(binHeader(1000, 0, nil)), ErrMalformedHeader},
		{"binary neg remark", binFrame(binHeader(-1, 0, nil)), ErrMalformedHeader},
		{"binary ext len", binFrame(binHeader(0, 10, nil)), ErrMalformedHeader},
		{"binary ext entry", binFrame(binHeader(0, 3, []byte{0, 5, 'a'})), ErrMalformedHeader},
		{"binary neg key", binFrame(binHeader(0, 6, []byte{0x80, 0, 0, 0, 0, 0})), ErrMalformedHeader},
		{"binary neg value", binFrame(binHeader(0, 7, []byte{0, 1, 'k', 0xff, 0xff, 0xff, 0xff})), ErrMalformedHeader},
	}
	for _, tc := range cases {
		_, err := ReadFrame(bytes.NewReader(tc.frame), 0)
		var fe *FrameError
		if !errors.Is(err, tc.kind) || !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.kind)
		}
	}
}

// binHeader builds a binary header with the given remark and ext lengths
// (remark bytes are not written, to test inconsistent lengths).
func binHeader(remarkLen, extLen int32, ext []byte) []byte {
	h := make([]byte, 13)
	h = binary.BigEndian.AppendUint32(h, uint32(remarkLen))
	h = binary.BigEndian.AppendUint32(h, uint32(extLen))
	return append(h, ext...)
}

func binFrame(header []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)))
	f = binary.BigEndian.AppendUint32(f, 1<<24|uint32(len(header)))
	return append(f, header...)
}

func TestDecodeEOF(t *testing.T) {
	if _, err := ReadFrame(bytes.NewReader(nil), 0); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
	frame, _ := (&Command{Language: "JAVA", Body: []byte("abc")}).Encode()
	for _, cut := range []int{2, 6, len(frame) - 1} {
		_, err := ReadFrame(bytes.NewReader(frame[:cut]), 0)
		if err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
}

func TestMaxFrameCap(t *testing.T) {
	c := &Command{Language: "JAVA", Body: make([]byte, 1000)}
	frame, _ := c.Encode()
	if _, err := ReadFrame(bytes.NewReader(frame), len(frame)); err != nil {
		t.Fatalf("frame of exactly the cap: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(frame), len(frame)-1); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame over the cap: %v", err)
	}
}

func TestDecoderStream(t *testing.T) {
	var stream []byte
	cmds := sampleCommands()
	for i, c := range cmds {
		c.SerializeType = SerializeType(i % 2)
		var err error
		if stream, err = c.AppendTo(stream); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDecoder(bufio.NewReaderSize(bytes.NewReader(stream), 16), 0)
	for _, want := range cmds {
		got, err := d.Decode()
		if err != nil || !sameCommand(want, got) {
			t.Fatalf("got %+v, %v; want %+v", got, err, want)
		}
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestBodyParts(t *testing.T) {
	c := &Command{Language: "JAVA", Body: []byte("ab"), BodyParts: [][]byte{[]byte("cd"), nil, []byte("e")}}
	head, err := c.AppendHead(nil)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := c.Encode()
	if !bytes.Equal(append(head, "abcde"...), whole) {
		t.Fatal("AppendHead + body parts differs from AppendTo")
	}
	got, err := ReadFrame(bytes.NewReader(whole), 0)
	if err != nil || string(got.Body) != "abcde" || got.BodyParts != nil {
		t.Fatalf("got %+v %v", got, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	c := &Command{SerializeType: SerializeRocketMQ, ExtFields: map[string]string{strings.Repeat("k", 40000): "v"}}
	if _, err := c.Encode(); !errors.Is(err, ErrEncode) {
		t.Fatalf("long binary key: %v", err)
	}
	c = &Command{Remark: strings.Repeat("r", maxHeaderLen)}
	if out, err := c.AppendTo([]byte("keep")); !errors.Is(err, ErrEncode) || string(out) != "keep" {
		t.Fatalf("huge header: %v %q", err, out)
	}
	c = &Command{SerializeType: 7}
	if _, err := c.Encode(); !errors.Is(err, ErrEncode) {
		t.Fatalf("bad serialize type: %v", err)
	}
}

func TestLanguageCodes(t *testing.T) {
	for code, name := range languageCodes {
		if LanguageCode(name) != byte(code) || LanguageName(byte(code)) != name {
			t.Fatalf("language %d/%s", code, name)
		}
	}
	if LanguageName(200) != "OTHER" || LanguageCode("COBOL") != 7 {
		t.Fatal("unknown language mapping")
	}
	c := &Command{SerializeType: SerializeRocketMQ, Language: "GO"}
	frame, _ := c.Encode()
	if frame[8+2] != 9 {
		t.Fatalf("GO encoded as %d", frame[10])
	}
}

func TestNewResponse(t *testing.T) {
	req := NewRequest(PullMessage, &TopicRequestHeader{Topic: "T"})
	req.Opaque, req.SerializeType = 42, SerializeRocketMQ
	resp := NewResponse(req, ResponseSystemError, "boom")
	if !resp.IsResponse() || resp.IsOneway() || resp.Opaque != 42 || resp.Version != 407 ||
		resp.SerializeType != SerializeRocketMQ || resp.Remark != "boom" || resp.Language != DefaultLanguage {
		t.Fatalf("%+v", resp)
	}
	if req.IsResponse() || req.Ext("topic") != "T" || req.Version != 407 {
		t.Fatalf("%+v", req)
	}
	req.MarkOneway()
	if !req.IsOneway() {
		t.Fatal("oneway")
	}
	if s := resp.String(); !strings.Contains(s, "SYSTEM_ERROR") || !strings.Contains(s, "42") {
		t.Fatalf("String() = %q", s)
	}
}

func TestCodeNames(t *testing.T) {
	if RequestCodeName(SendMessage) != "SEND_MESSAGE" || ResponseCodeName(ResponseFlushDiskTimeout) != "FLUSH_DISK_TIMEOUT" ||
		RequestCodeName(9999) != "9999" {
		t.Fatal("code names")
	}
}

func BenchmarkEncodeResponse(b *testing.B) {
	req := &Command{Opaque: 1}
	resp := NewResponse(req, ResponseSuccess, "")
	resp.SetHeader(&SendMessageResponseHeader{MsgID: "0A00000100002A9F000000000001E240", QueueID: 1, QueueOffset: 99, MsgRegion: "DefaultRegion", TraceOn: true})
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = resp.AppendTo(buf[:0])
	}
}

func BenchmarkDecodeSendRequest(b *testing.B) {
	h := goSendHeader()
	c := &Command{Code: SendMessage, Language: "GO", Version: 317, Opaque: 1, ExtFields: h.Encode(), Body: make([]byte, 100)}
	frame, _ := c.Encode()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeFrame(frame[4:]); err != nil {
			b.Fatal(err)
		}
	}
}

// slowReader hands out at most 1000 bytes per Read.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	if len(p) > 1000 {
		p = p[:1000]
	}
	return s.r.Read(p)
}

func TestLargeFrameReadInSteps(t *testing.T) {
	cmd := &Command{Code: 10, Language: "GO", Version: 317, Opaque: 7, Body: bytes.Repeat([]byte("b"), 300<<10)}
	enc, err := cmd.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(slowReader{bytes.NewReader(enc)}, DefaultMaxFrame)
	if err != nil || !bytes.Equal(got.Body, cmd.Body) || got.Opaque != 7 {
		t.Fatalf("%v %d", err, len(got.Body))
	}
	// a frame announced at 16 MiB that never arrives: an error, not a hang
	// and not a 16 MiB allocation up front
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], 16<<20-8)
	if _, err := ReadFrame(bytes.NewReader(append(head[:], 0, 0, 0, 5)), DefaultMaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
}
