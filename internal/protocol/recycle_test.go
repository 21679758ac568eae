package protocol

import (
	"maps"
	"strings"
	"testing"
)

// A recycled Command must come back from the decoders and NewResponse
// with nothing of its previous life: no ext field, remark or body.
func TestRecycleLeavesNothingBehind(t *testing.T) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		first := &Command{Code: 310, Language: "JAVA", Remark: "r", SerializeType: st,
			ExtFields: map[string]string{"a": "pg", "b": "topic", "k": "false"}, Body: []byte("x")}
		second := &Command{Code: 11, Language: "GO", SerializeType: st, ExtFields: map[string]string{"z": "1"}}
		for range 50 { // sync.Pool may drop entries; many rounds exercise reuse
			c := decodeEncoded(t, first)
			if !maps.Equal(c.ExtFields, first.ExtFields) || c.Remark != "r" || string(c.Body) != "x" {
				t.Fatalf("%v: first decoded as %+v", st, c)
			}
			c.Recycle()
			c = decodeEncoded(t, second)
			if !maps.Equal(c.ExtFields, second.ExtFields) || c.Remark != "" || c.Body != nil || c.Code != 11 {
				t.Fatalf("%v: second decoded as %+v", st, c)
			}
			c.Recycle()
			r := NewResponse(nil, 0, "")
			if r.ExtFields != nil || r.Body != nil || r.Remark != "" || r.Opaque != 0 {
				t.Fatalf("response from the pool not clean: %+v", r)
			}
			r.SetHeader(&SendMessageResponseHeader{MsgID: "m", QueueOffset: 5})
			if len(r.ExtFields) != 4 || r.ExtFields["msgId"] != "m" {
				t.Fatalf("response header from a pooled map: %v", r.ExtFields)
			}
			r.Recycle()
		}
	}
}

func decodeEncoded(t *testing.T, c *Command) *Command {
	t.Helper()
	frame, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeFrame(frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Interned values are the decoded bytes, whatever else shares the slot.
func TestInternValue(t *testing.T) {
	for _, v := range []string{"", "a", "pg", "false", "TopicTest", "1700000000000", "12345", string(make([]byte, internMaxLen+1))} {
		for range 3 {
			if got := internValue([]byte(v)); got != v {
				t.Fatalf("internValue(%q) = %q", v, got)
			}
		}
	}
	b := []byte("mutable")
	s := internValue(b)
	b[0] = 'X'
	if s != "mutable" || internValue([]byte("mutable")) != "mutable" {
		t.Fatalf("interned string aliases its input: %q", s)
	}
}

// Remoting reuses a frame's header bytes as soon as DecodeFrame returned:
// nothing decoded may alias them, whatever the encoding or escapes.
func TestDecodedCommandDoesNotAliasTheHeader(t *testing.T) {
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		want := &Command{Code: 310, Language: "GO", Remark: "remark \"quoted\" é", SerializeType: st,
			ExtFields: map[string]string{"a": "group", "i": "TAGS\x01t\x02UNIQ_KEY\x01" + strings.Repeat("u", 120), "zz": "unknown-key-value"}}
		frame, err := want.Encode()
		if err != nil {
			t.Fatal(err)
		}
		c, err := DecodeFrame(frame[4:])
		if err != nil {
			t.Fatal(err)
		}
		for i := range frame {
			frame[i] = 'X'
		}
		if c.Remark != want.Remark || c.Language != "GO" || !maps.Equal(c.ExtFields, want.ExtFields) {
			t.Fatalf("%v: decoded command changed with its header bytes: %+v", st, c)
		}
	}
}
