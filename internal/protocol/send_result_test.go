package protocol

import (
	"bytes"
	"maps"
	"testing"
)

// sendResultPair returns a response carrying r typed, and one carrying
// the same header as a map.
func sendResultPair(r *SendResult, st SerializeType) (typed, mapped *Command) {
	req := &Command{Code: SendMessageV2, Opaque: 9, SerializeType: st}
	typed = NewResponse(req, ResponseSuccess, "")
	typed.SetSendResult(r)
	mapped = NewResponse(req, ResponseSuccess, "")
	h := r.header()
	mapped.ExtFields = h.Encode()
	return typed, mapped
}

func newSendResult(id string, qid int32, off int64, region string, trace bool) *SendResult {
	r := &SendResult{QueueID: qid, QueueOffset: off, MsgRegion: region, TraceOn: trace}
	r.MsgIDLen = uint8(copy(r.MsgID[:], id))
	return r
}

// TestSendResultSameBytesAsMap: a typed send response encodes to exactly
// the frame the map form does, in both serialize types, and decodes to
// the map; Fields and Ext see it.
func TestSendResultSameBytesAsMap(t *testing.T) {
	for _, r := range []*SendResult{
		newSendResult("7F00000100002A9F0000000000001234", 3, 1<<40, "DefaultRegion", false),
		newSendResult("7F00000100002A9F0000000000001234", 0, 0, "", true),
		newSendResult("20010DB800000000000000000000000100002A9F0000000000000001", -1, -5, "région \"x\"", false),
	} {
		for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
			typed, mapped := sendResultPair(r, st)
			a, err1 := typed.Encode()
			b, err2 := mapped.Encode()
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Fatalf("%v: typed frame differs (%v, %v)\n %q\n %q", st, err1, err2, a, b)
			}
			got, err := DecodeFrame(a[4:])
			if err != nil || !maps.Equal(got.ExtFields, mapped.ExtFields) {
				t.Fatalf("%v: decoded %v (%v), want %v", st, got.ExtFields, err, mapped.ExtFields)
			}
			if !maps.Equal(typed.Fields(), mapped.ExtFields) || typed.Ext("msgId") != mapped.ExtFields["msgId"] {
				t.Fatalf("Fields() %v, want %v", typed.Fields(), mapped.ExtFields)
			}
		}
	}
}

// TestSendResultEdits: SetExt on a typed response starts from its map;
// SetHeader replaces it; a map assigned directly wins; an id length past
// the array is clipped, not a panic in the writer.
func TestSendResultEdits(t *testing.T) {
	over, _ := sendResultPair(newSendResult("AB", 1, 2, "", false), SerializeJSON)
	r, _ := over.SendResult()
	bad := *r
	bad.MsgIDLen = 255
	over.SetSendResult(&bad)
	if _, err := over.Encode(); err != nil {
		t.Fatal(err)
	}
	over.ExtFields = map[string]string{"msgId": "X"}
	if _, ok := over.SendResult(); ok || over.Ext("msgId") != "X" {
		t.Fatal("a directly assigned map does not replace the typed result")
	}
	typed, _ := sendResultPair(newSendResult("AB", 1, 2, "", false), SerializeJSON)
	typed.SetExt("k", "v")
	if _, ok := typed.SendResult(); ok || typed.ExtFields["msgId"] != "AB" || typed.ExtFields["k"] != "v" {
		t.Fatalf("SetExt: %v", typed.ExtFields)
	}
	typed, _ = sendResultPair(newSendResult("AB", 1, 2, "", false), SerializeJSON)
	typed.SetHeader(nil)
	if _, ok := typed.SendResult(); ok || typed.Fields() != nil {
		t.Fatalf("SetHeader(nil) kept the typed result: %v", typed.Fields())
	}
}

// FuzzSendResult: any typed send result encodes to the map form's bytes.
func FuzzSendResult(f *testing.F) {
	f.Add([]byte("7F00000100002A9F0000000000001234"), int32(3), int64(99), "DefaultRegion", true)
	f.Add([]byte("a\"b\\c\x01\xff"), int32(-1), int64(-1), "", false)
	f.Fuzz(func(t *testing.T, id []byte, qid int32, off int64, region string, trace bool) {
		if len(id) > 64 {
			id = id[:64]
		}
		r := newSendResult(string(id), qid, off, region, trace)
		for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
			typed, mapped := sendResultPair(r, st)
			a, err1 := typed.Encode()
			b, err2 := mapped.Encode()
			if (err1 == nil) != (err2 == nil) || !bytes.Equal(a, b) {
				t.Fatalf("%v: typed frame differs (%v, %v)\n %q\n %q", st, err1, err2, a, b)
			}
		}
	})
}
